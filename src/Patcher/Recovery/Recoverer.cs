using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.Transaction;

namespace Patching.Recovery;

/// <summary>
/// Rolls an interrupted transaction forward or back from the journal and the evidence on disk
/// (docs/recovery.md has the decision table). Every step is idempotent, so a crash during recovery is
/// recovered by running recovery again.
/// </summary>
internal static class Recoverer
{
    /// <summary>
    /// Resolves a pending transaction before a new apply. A staging of the same patch that was interrupted
    /// is returned for resumption instead of being discarded.
    /// </summary>
    public static TxRecord? RecoverPending(IFileOps fs, StateLayout layout, JournalStore journal, ILogger log, RollForwardTrust trust, string? resumeManifestHash,
        string? resumeStrategy = null, LockRetry? retry = null)
    {
        var pending = journal.Pending();
        if (pending is null)
        {
            ResolveWithoutJournalRow(fs, layout, log);
            return null;
        }

        if (pending is { State: TxState.Started, Kind: TxKind.Apply } && pending.ManifestHash == resumeManifestHash &&
            (resumeStrategy is null || pending.Strategy == resumeStrategy) &&
            fs.Stat(layout.StagingDir(pending.Id)).Kind == EntryKind.Directory)
        {
            return pending;
        }

        Recover(fs, layout, journal, pending, log, trust, retry);
        return null;
    }

    /// <summary>
    /// Returns true when the transaction was rolled forward, false when rolled back. A transaction is rolled forward only
    /// when <paramref name="trust"/> verifies its stored manifest again (backup-complete is the last state from which it
    /// can still be undone).
    /// </summary>
    public static bool Recover(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord tx, ILogger log, RollForwardTrust trust, LockRetry? retry = null)
    {
        log.LogWarning(PatcherLogEvents.RecoveryStarted, "Recovering transaction {Tx} ({Kind} to {Version}, {Strategy}) found in state {State}", tx.Id, tx.Kind.ToText(), tx.ToVersion, tx.Strategy, tx.State.ToText());
        var retryOrDefault = retry ?? new LockRetry(LockRetry.DefaultBudget, TimeProvider.System, log, OperatingSystem.IsWindows() || fs is IWin32ErrorFileOps) { Root = layout.InstallDir };
        if (tx.State == TxState.BackupComplete && trust.Check(tx) is { } untrusted)
        {
            log.LogWarning("The interrupted transaction {Tx} does not verify against the trusted keys ({Reason}); rolling it back", tx.Id, untrusted.Message);
            RollBackUnverified(fs, layout, journal, tx, log, retryOrDefault);
            return false;
        }

        if (tx.Strategy == "layered")
            return RecoverLayered(fs, layout, journal, tx, log, retryOrDefault);
        switch (tx.State)
        {
            case TxState.Started:
                RollBackStarted(fs, layout, journal, tx.Id, log, tx.Kind);
                return false;

            case TxState.BackupComplete:
                var swap = new SwapCommit(fs, layout, log);
                var install = fs.Stat(layout.InstallDir);
                if (install.Kind == EntryKind.Directory && install.Inode != 0 && install.Inode == tx.StagingInode && install.Device == tx.StagingDevice)
                {
                    log.LogInformation("The exchange of {Tx} had happened; rolling forward", tx.Id);
                }
                else if (install.Kind == EntryKind.Missing && fs.Stat(layout.OldDir(tx.Id)).Kind == EntryKind.Directory)
                {
                    log.LogInformation("Crashed between the two renames of {Tx}; completing the switch", tx.Id);
                    swap.CompleteTwoRenameSwitch(tx.Id);
                }
                else if (StagedTreeIsComplete(fs, layout, tx))
                {
                    log.LogInformation("Staged tree of {Tx} is complete and verifies; rolling forward", tx.Id);
                    if (SwitchOrRollBack(fs, layout, journal, tx, log) is not null) return false;
                }
                else
                {
                    log.LogWarning("Staged tree of {Tx} does not verify; rolling back", tx.Id);
                    RollBackStarted(fs, layout, journal, tx.Id, log, tx.Kind);
                    return false;
                }

                journal.MarkPatched(tx.Id, InstalledRecord.After(tx.Manifest, tx.ManifestHash, journal.Installed(), tx.KeepPrevious), InstallIdentity.Establish(fs, layout.InstallDir));
                FinishPatched(fs, layout, journal, tx, log);
                return true;

            case TxState.Patched:
                FinishPatched(fs, layout, journal, tx, log);
                return true;

            default:
                return false;
        }
    }

    /// <summary>
    /// Undoes a backup-complete transaction whose manifest no longer verifies, wherever its commit had got to: the
    /// layered commit undoes file by file; a swap whose exchange happened exchanges back, one whose two-rename switch
    /// was cut after the first rename puts the old tree back, and the staged tree is deleted.
    /// </summary>
    private static void RollBackUnverified(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord tx, ILogger log, LockRetry retry)
    {
        if (tx.Strategy == "layered")
        {
            RollBackLayered(fs, layout, journal, tx.Id, retry, log);
            return;
        }

        var staging = layout.StagingDir(tx.Id);
        var install = fs.Stat(layout.InstallDir);
        var parent = Path.GetDirectoryName(layout.InstallDir)!;
        if (install.Kind == EntryKind.Directory && install.Inode != 0 && install.Inode == tx.StagingInode && install.Device == tx.StagingDevice)
        {
            if (!fs.TryExchange(layout.InstallDir, staging))
                throw new PatcherException(PatchErrorCode.IOFailure, "cannot exchange the unverified tree back out of the install", layout.InstallDir);
            fs.SyncDirectory(parent);
            fs.SyncDirectory(layout.StateDir);
        }
        else if (install.Kind == EntryKind.Missing && fs.Stat(layout.OldDir(tx.Id)).Kind == EntryKind.Directory)
        {
            fs.Rename(layout.OldDir(tx.Id), layout.InstallDir);
            fs.SyncDirectory(parent);
            fs.SyncDirectory(layout.StateDir);
        }

        RollBackStarted(fs, layout, journal, tx.Id, log, tx.Kind);
    }

    /// <summary>
    /// Runs the switch. When it fails and the install was not touched (no exchange, and the two-rename fallback
    /// did not start), the transaction is rolled back and the failure returned: a switch that can never succeed
    /// here (EXDEV, EBUSY on a mount point, EACCES) must not be retried, with a full re-hash of the staged tree,
    /// on every start. A failure half-way through the two renames is rethrown: recovery finishes it forward.
    /// </summary>
    public static PatcherException? SwitchOrRollBack(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord tx, ILogger log)
    {
        try
        {
            new SwapCommit(fs, layout, log).Switch(tx.Id);
            return null;
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            var install = fs.Stat(layout.InstallDir);
            var exchanged = install.Inode != 0 && install.Inode == tx.StagingInode && install.Device == tx.StagingDevice;
            if (install.Kind != EntryKind.Directory || exchanged || fs.Stat(layout.OldDir(tx.Id)).Kind != EntryKind.Missing) throw;
            var failure = NativeErrors.FromException(ex, "switch to the new version", layout.InstallDir);
            log.LogWarning("Switching {Install} to the staged tree of {Tx} failed ({Reason}); rolling back", layout.InstallDir, tx.Id, failure.Message);
            RollBackStarted(fs, layout, journal, tx.Id, log, tx.Kind);
            return failure;
        }
    }

    /// <summary>Undoes a transaction whose switch has not happened: the install was never touched.</summary>
    public static void RollBackStarted(IFileOps fs, StateLayout layout, JournalStore journal, string txId, ILogger log, TxKind kind = TxKind.Apply)
    {
        var staging = layout.StagingDir(txId);
        if (kind == TxKind.Rollback)
        {
            // The staging directory is the kept previous version: put it back rather than delete it.
            if (fs.Stat(staging).Kind == EntryKind.Directory && fs.Stat(layout.PreviousDir).Kind == EntryKind.Missing)
            {
                fs.Rename(staging, layout.PreviousDir);
                fs.SyncDirectory(layout.StateDir);
            }
        }
        else
        {
            TreeOps.DeleteTree(fs, staging);
        }

        journal.SetState(txId, TxState.RolledBack);
        RemoveMarker(fs, layout);
        log.LogInformation("Transaction {Tx} rolled back; the old version is intact", txId);
    }

    /// <summary>
    /// After the switch: carry over user files, keep the old tree as the previous version or move it to the trash,
    /// mark done. Deleting the trash is the caller's (<see cref="EmptyTrash"/>): the new version is complete and
    /// durable before, so the slow part (an unlink per old file) need not delay the launcher.
    /// </summary>
    /// <param name="fs">File operations.</param>
    /// <param name="layout">Where the state is.</param>
    /// <param name="journal">The journal.</param>
    /// <param name="tx">The patched transaction.</param>
    /// <param name="log">Logger.</param>
    /// <param name="plan">The apply's own plan, when the caller has it: its manifest and old-version paths are what
    /// this would otherwise parse again from the journal (two manifests, tens of milliseconds at 10k files).</param>
    /// <returns>
    /// The player's entries the sweep could not move into the new version (install-relative); they stay in the old tree,
    /// which is then kept as <see cref="StateLayout.UnsweptDir"/> instead of being deleted.
    /// </returns>
    public static IReadOnlyList<string> FinishPatched(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord tx, ILogger log, ApplyPlan? plan = null)
    {
        IReadOnlyList<string> left = [];
        var manifest = plan?.Manifest ?? ManifestCodec.Deserialize(tx.Manifest);
        IReadOnlySet<string> oldVersion;
        if (plan is not null)
        {
            oldVersion = plan.OldVersionPaths;
        }
        else
        {
            var paths = new HashSet<string>(manifest.Base.Select(b => b.Path).Concat(manifest.BaseDirectories), StringComparer.Ordinal);
            if (journal.Installed()?.PreviousManifest is { } prev)
                paths.UnionWith(ApplyPlan.TargetPaths(ManifestCodec.Deserialize(prev)));
            oldVersion = paths;
        }
        var swap = new SwapCommit(fs, layout, log);
        var oldTree = swap.OldTree(tx.Id);
        if (oldTree is not null)
        {
            left = swap.SweepUserFiles(tx.Id, oldTree, oldVersion, ApplyPlan.TargetPaths(manifest));
            // Renames only, within the state directory: fsyncs of it and of the trash make them durable. A crash in
            // between reruns this with less to do (the old tree stays at its staging/old path until it moved).
            TrashKeptPrevious(fs, layout, tx.Id);
            if (left.Count > 0)
            {
                fs.Rename(oldTree, layout.UnsweptDir(tx.Id));
                log.LogWarning("{Count} of the player's entries could not be moved into the new version; they are kept with the old version's files in {Kept}",
                    left.Count, layout.UnsweptDir(tx.Id));
            }
            else if (tx.KeepPrevious) fs.Rename(oldTree, layout.PreviousDir);
            else MoveToTrash(fs, layout, oldTree, tx.Id);
            fs.SyncDirectory(layout.StateDir);
            if (fs.Stat(layout.TrashDir).Kind == EntryKind.Directory) SyncTrash(fs, layout);
        }

        journal.SetState(tx.Id, TxState.Done);
        RemoveMarker(fs, layout);
        return left;
    }

    /// <summary>Moves the tree an earlier update kept as the previous version to the trash, if there is one (the caller syncs).</summary>
    private static bool TrashKeptPrevious(IFileOps fs, StateLayout layout, string txId)
    {
        if (fs.Stat(layout.PreviousDir).Kind == EntryKind.Missing) return false;
        MoveToTrash(fs, layout, layout.PreviousDir, txId + "-previous");
        return true;
    }

    /// <summary>
    /// Makes the trash's new entries durable (so a power cut cannot orphan the inodes of what was moved there). A trash that another
    /// process's cleanup removed meanwhile took the entries with it: nothing left to sync.
    /// </summary>
    public static void SyncTrash(IFileOps fs, StateLayout layout)
    {
        try
        {
            fs.SyncDirectory(layout.TrashDir);
        }
        catch (PatcherException) when (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing)
        {
        }
    }

    /// <summary>Renames <paramref name="tree"/> into the trash as <paramref name="name"/> (the caller fsyncs if it matters).</summary>
    public static void MoveToTrash(IFileOps fs, StateLayout layout, string tree, string name)
    {
        var target = Path.Join(layout.TrashDir, name);
        if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) fs.CreateDirectory(layout.TrashDir);
        // A resumed transaction trashes its incoming directory a second time: a name of its own, rather than deleting
        // the first here (another process may be emptying the trash at this moment).
        else if (fs.Stat(target).Kind != EntryKind.Missing) target += "-" + StateLayout.RandomTag();
        try
        {
            fs.Rename(tree, target);
        }
        catch (PatcherException) when (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing)
        {
            // Another process's cleanup removed the (then empty) trash between our check and the rename.
            fs.CreateDirectory(layout.TrashDir);
            fs.Rename(tree, target);
        }
    }

    /// <summary>
    /// Deletes the trash. Never throws: what cannot be deleted now (a file in use, an immutable file, another process
    /// deleting or filling the same trash) is logged and left for the next Apply or Recover.
    /// </summary>
    public static void EmptyTrash(IFileOps fs, StateLayout layout, ILogger log)
    {
        // Two deleters may meet (a launcher's background cleanup and the app's Recover, without the lock): the one
        // that finds an entry gone under it starts over on what is left, a few times, before giving up for now.
        // Each pass deletes everything it can: one entry that cannot go (an immutable file, a file in use) must not keep
        // the rest of an old version on disk.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var remains = TreeOps.DeleteTreeBestEffort(fs, layout.TrashDir);
                if (remains.Entries == 0) return;
                if (attempt < 3) continue;
                log.LogWarning("Could not delete the old version's files in {Trash} yet: {Count} entries ({Bytes} bytes) are left ({Reason}); the next apply or recover retries",
                    layout.TrashDir, remains.Entries, remains.Bytes, remains.FirstFailure?.Message);
                return;
            }
            catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
            {
                if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) return;
                if (attempt < 3) continue;
                log.LogWarning(PatcherLogEvents.CleanupDeferred, "Could not delete the old version's files in {Trash} yet ({Reason}); the next apply or recover retries", layout.TrashDir, ex.Message);
                return;
            }
        }
    }

    /// <summary>
    /// Layered: started means the install was not touched (backups are links or copies), so staging and backups
    /// go; backup-complete rolls forward when every remaining staged file verifies, back otherwise (and back when
    /// a file stays locked); rolling-back finishes undoing; patched finishes cleaning up.
    /// </summary>
    private static bool RecoverLayered(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord tx, ILogger log, LockRetry retry)
    {
        var commit = new LayeredCommit(fs, layout, journal, retry, log);
        switch (tx.State)
        {
            case TxState.Started:
                RollBackLayeredStarted(fs, layout, journal, tx.Id, retry, log);
                return false;

            case TxState.BackupComplete:
                var manifest = ManifestCodec.Deserialize(tx.Manifest);
                if (!commit.CanRollForward(tx.Id, manifest))
                {
                    log.LogWarning("Staged files of {Tx} do not verify; rolling every file back", tx.Id);
                    RollBackLayered(fs, layout, journal, tx.Id, retry, log);
                    return false;
                }

                try
                {
                    commit.Forward(tx.Id);
                }
                catch (PatcherException ex) when (retry.IsLock(ex) || ex.Code is PatchErrorCode.DiskFull or PatchErrorCode.AccessDenied)
                {
                    log.LogWarning("Cannot finish {Tx} ({Reason}); rolling every file back", tx.Id, ex.Message);
                    RollBackLayered(fs, layout, journal, tx.Id, retry, log);
                    return false;
                }

                var installed = journal.Installed();
                journal.MarkPatched(tx.Id, InstalledRecord.After(tx.Manifest, tx.ManifestHash, installed, keepsPreviousTree: false), InstallIdentity.Establish(fs, layout.InstallDir));
                FinishLayered(fs, layout, journal, tx.Id, retry, log);
                return true;

            case TxState.RollingBack:
                RollBackLayered(fs, layout, journal, tx.Id, retry, log);
                return false;

            case TxState.Patched:
                FinishLayered(fs, layout, journal, tx.Id, retry, log);
                return true;

            default:
                return false;
        }
    }

    /// <summary>Layered, before the first install file changed: drop staging and backups.</summary>
    public static void RollBackLayeredStarted(IFileOps fs, StateLayout layout, JournalStore journal, string txId, LockRetry retry, ILogger log)
    {
        new LayeredCommit(fs, layout, journal, retry, log).DeleteLeftovers(txId);
        journal.SetState(txId, TxState.RolledBack);
        RemoveMarker(fs, layout);
        log.LogInformation("Transaction {Tx} rolled back; the old version is intact", txId);
    }

    /// <summary>Layered, after files may have changed: journal rolling-back first (so recovery keeps undoing), then undo every step.</summary>
    public static void RollBackLayered(IFileOps fs, StateLayout layout, JournalStore journal, string txId, LockRetry retry, ILogger log)
    {
        journal.SetState(txId, TxState.RollingBack);
        var commit = new LayeredCommit(fs, layout, journal, retry, log);
        commit.RollBack(txId);
        commit.DeleteLeftovers(txId);
        journal.SetState(txId, TxState.RolledBack);
        RemoveMarker(fs, layout);
        log.LogInformation("Transaction {Tx} rolled back file by file; the old version is intact", txId);
    }

    /// <summary>Layered, after patched: preserve displaced user entries, remove backups and staging, mark done.</summary>
    public static void FinishLayered(IFileOps fs, StateLayout layout, JournalStore journal, string txId, LockRetry retry, ILogger log)
    {
        new LayeredCommit(fs, layout, journal, retry, log).Finish(txId);
        // A tree an earlier swap kept (KeepPreviousVersion) is no longer the version before this one: the installed row
        // now names this update's base as the previous version, and the layered strategy keeps no old tree. Left in
        // place, a rollback would put that older tree back under the wrong version number.
        if (TrashKeptPrevious(fs, layout, txId))
        {
            fs.SyncDirectory(layout.StateDir);
            SyncTrash(fs, layout);
        }

        journal.SetState(txId, TxState.Done);
        RemoveMarker(fs, layout);
    }

    /// <summary>
    /// The pending marker names a transaction the journal does not know: the journal was deleted or replaced
    /// mid-transaction. Without its rows nothing can be rolled forward, so only what is provably safe is done:
    /// an install path emptied by the two-rename switch gets its old tree back, and a leftover staging tree is
    /// renamed <c>orphaned-&lt;tx&gt;</c> rather than deleted (after an exchange it would be the old tree, and
    /// could hold a save written after staging). Then the marker goes.
    /// </summary>
    public static void ResolveWithoutJournalRow(IFileOps fs, StateLayout layout, ILogger log)
    {
        if (fs.Stat(layout.PendingMarkerPath).Kind == EntryKind.Missing) return;
        string txId;
        using (var marker = fs.OpenRead(layout.PendingMarkerPath))
        using (var reader = new StreamReader(marker))
            txId = reader.ReadToEnd().Trim();
        if (txId.Length > 0 && txId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            var old = layout.OldDir(txId);
            if (fs.Stat(layout.InstallDir).Kind == EntryKind.Missing && fs.Stat(old).Kind == EntryKind.Directory)
            {
                log.LogWarning("Journal has no record of transaction {Tx}; the install path was empty, restoring the old tree from {Old}", txId, old);
                fs.Rename(old, layout.InstallDir);
                fs.SyncDirectory(Path.GetDirectoryName(layout.InstallDir)!);
                fs.SyncDirectory(layout.StateDir);
            }

            var staging = layout.StagingDir(txId);
            if (fs.Stat(staging).Kind == EntryKind.Directory)
            {
                var orphan = Path.Join(layout.StateDir, "orphaned-" + txId);
                log.LogWarning("Journal has no record of transaction {Tx}; kept its staging tree as {Orphan} (remove it once nothing in it is needed)", txId, orphan);
                fs.Rename(staging, orphan);
                fs.SyncDirectory(layout.StateDir);
            }
        }

        RemoveMarker(fs, layout);
    }

    public static void RemoveMarker(IFileOps fs, StateLayout layout)
    {
        if (fs.Stat(layout.PendingMarkerPath).Kind == EntryKind.Missing) return;
        fs.DeleteFile(layout.PendingMarkerPath);
        fs.SyncDirectory(layout.StateDir);
    }

    /// <summary>Every file of the new version is in the staged tree with its declared size and hash.</summary>
    private static bool StagedTreeIsComplete(IFileOps fs, StateLayout layout, TxRecord tx)
    {
        var staging = layout.StagingDir(tx.Id);
        return fs.Stat(staging).Kind == EntryKind.Directory && FirstMismatch(fs, staging, ManifestCodec.Deserialize(tx.Manifest)) is null;
    }

    /// <summary>
    /// The first file or directory of <paramref name="manifest"/> that <paramref name="root"/> does not hold exactly
    /// (declared size and hash, or a directory), or null when it holds them all.
    /// </summary>
    private static string? FirstMismatch(IFileOps fs, string root, Manifest manifest)
    {
        string? bad = null;
        Parallelism.ForEach(manifest.Files, CancellationToken.None, f =>
        {
            if (Volatile.Read(ref bad) is not null) return;
            if (ContentHash.Compare(fs, PathRules.Join(root, f.Path), f.Size, f.Sha256) != FileMatch.Same) Interlocked.CompareExchange(ref bad, f.Path, null);
        });
        return bad ?? manifest.Directories.FirstOrDefault(d => fs.Stat(PathRules.Join(root, d)).Kind != EntryKind.Directory);
    }

    /// <summary>Switches back to the version kept by <see cref="PatcherOptions.KeepPreviousVersion"/>; the current one becomes the kept one.</summary>
    public static ApplyResult RollbackToPrevious(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        var log = options.Logger;
        if (fs.Stat(layout.StateDir).Kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.NothingToRollBack, "no previous version is kept (nothing was installed by Patcher here)", layout.InstallDir);
        StateTrust.Require(fs, layout);
        using var txLock = TransactionLock.TryAcquire(layout.LockPath);
        if (txLock is null) return new ApplyResult(ApplyStatus.Busy, null, null, null, CommitStrategy.Swap, false, 0, 0, 0);
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, log, options.TimeProvider);
        _ = RecoverPending(fs, layout, journal, log, RollForwardTrust.From(options), resumeManifestHash: null);
        var installed = journal.Installed();
        if (installed?.PreviousManifest is null || installed.PreviousVersion is null || fs.Stat(layout.PreviousDir).Kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.NothingToRollBack, "no previous version is kept; apply with KeepPreviousVersion to allow rollback", layout.InstallDir);

        var current = ManifestCodec.Deserialize(installed.Manifest);
        var previous = ManifestCodec.Deserialize(installed.PreviousManifest);
        // The kept tree lies in the state directory for as long as the player likes: it goes back only if it still is
        // exactly the version the journal says it is.
        if (FirstMismatch(fs, layout.PreviousDir, previous) is { } changed)
            throw new PatcherException(PatchErrorCode.VerifyFailed,
                $"the kept previous version {installed.PreviousVersion} no longer matches its manifest ('{changed}' is missing or changed); nothing was rolled back", layout.PreviousDir);
        var tx = new TxRecord
        {
            Id = "rb-" + Guid.NewGuid().ToString("N")[..12],
            Kind = TxKind.Rollback,
            Product = installed.Product,
            FromVersion = installed.Version,
            ToVersion = installed.PreviousVersion,
            ManifestHash = ManifestCodec.Hash(installed.PreviousManifest),
            Manifest = installed.PreviousManifest,
            Strategy = "swap",
            State = TxState.Started,
            KeepPrevious = true,
        };
        TreeOps.WriteDurably(fs, layout.PendingMarkerPath, System.Text.Encoding.UTF8.GetBytes(tx.Id));
        journal.Begin(tx);
        var staging = layout.StagingDir(tx.Id);
        fs.Rename(layout.PreviousDir, staging);
        fs.SyncDirectory(layout.StateDir);

        // The user's files go along, exactly as for a forward apply.
        var user = ApplyPlan.FindUserEntries(TreeOps.Walk(fs, layout.InstallDir, PathRules.IsInstallMarker), ApplyPlan.TargetPaths(current), ApplyPlan.TargetPaths(previous));
        var plan = new ApplyPlan { Manifest = previous, Files = [], UserEntries = user, OldVersionPaths = ApplyPlan.TargetPaths(current), BytesToWrite = 0 };
        new Stager(fs, journal, log).Stage(tx.Id, layout.InstallDir, staging, plan, null, new Dictionary<string, FileRow>(), null, CancellationToken.None);
        var identity = fs.Stat(staging);
        journal.MarkBackupComplete(tx.Id, identity.Device, identity.Inode);
        if (SwitchOrRollBack(fs, layout, journal, tx with { StagingDevice = identity.Device, StagingInode = identity.Inode }, log) is { } failure)
            throw RolledBack(failure);
        journal.MarkPatched(tx.Id, new InstalledRecord(installed.Product, installed.PreviousVersion, tx.ManifestHash, installed.PreviousManifest,
            installed.Version, installed.Manifest), InstallIdentity.Establish(fs, layout.InstallDir));
        FinishPatched(fs, layout, journal, tx with { State = TxState.Patched }, log);
        EmptyTrash(fs, layout, log);
        log.LogInformation("Rolled back from {From} to {To}", installed.Version, installed.PreviousVersion);
        return new ApplyResult(ApplyStatus.Applied, installed.Version, installed.PreviousVersion, tx.Id, CommitStrategy.Swap, false, 0, 0, 0);
    }

    /// <summary>The error a caller sees when the switch failed and the transaction was rolled back.</summary>
    public static PatcherException RolledBack(PatcherException failure) =>
        new(failure.Code, failure.Message + "; the update was rolled back: the previous state is intact", failure.Path, failure) { NativeError = failure.NativeError };
}
