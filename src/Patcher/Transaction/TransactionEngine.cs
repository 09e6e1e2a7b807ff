using System.Globalization;
using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Progress;
using Patching.Recovery;
using Patching.Signing;
using Patching.Sources;
using Patching.Staging;

namespace Patching.Transaction;

/// <summary>
/// Drives one transaction: preflight (nothing on disk changes), journal, staging, commit, cleanup.
/// Every step that changes the disk is preceded by the durable journal row that allows it.
/// </summary>
internal static class TransactionEngine
{
    /// <summary>The real file system, wrapped for crash injection when the test hook is armed.</summary>
    internal static EngineSettings Default => new(CrashInjection.Enabled ? new CrashingFileOps(FileOps.Instance) : FileOps.Instance);

    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        Apply(Default, installDir, patchDir, options, progress, ct);

    public static ApplyResult Apply(EngineSettings engine, string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        NativeErrors.Guard("apply", installDir, () => ApplyCore(engine, installDir, patchDir, options, ProgressTracker.Wrap(progress, options.TimeProvider), ct));

    private static ApplyResult ApplyCore(EngineSettings engine, string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        // Verifying counts its steps: the manifest, its signature, then the install's files (ApplyVerified).
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 0, VerifySteps, 0, 0) { CurrentItem = ManifestCodec.ManifestFileName });

        // ---- Preflight on the patch alone: nothing on disk is touched until it passes. ----
        RequireInstallDirectory(engine.FileSystem, Path.TrimEndingDirectorySeparator(installDir));
        var package = PatchPackage.Open(patchDir, options.Limits, () => InstalledManifest(engine, installDir, options));
        if (options.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to apply an unverifiable patch", patchDir);
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 1, VerifySteps, 0, 0) { CurrentItem = ManifestCodec.SignatureFileName });
        IReadOnlyList<string> keyIds;
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            keyIds = package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        return ApplyVerified(engine, installDir, package, keyIds, options, progress, ct);
    }

    /// <summary>
    /// The manifest the journal records for the installed version (null: none, or another applier holds the lock): a
    /// patch listing only changes may name it as its base. Read under the lock with the journal opened as the apply
    /// opens it, so a refusal leaves the state directory's files as they were.
    /// </summary>
    private static byte[]? InstalledManifest(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var fs = engine.FileSystem;
        var layout = ResolveLayout(fs, engine, Path.TrimEndingDirectorySeparator(installDir), options);
        if (fs.Stat(layout.StateDir).Kind != EntryKind.Directory || !File.Exists(layout.JournalPath)) return null;
        StateTrust.Require(fs, layout);
        using var held = TransactionLock.TryAcquire(layout.LockPath);
        if (held is null) return null;
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, options.Logger);
        return journal.Installed()?.Manifest;
    }

    /// <summary>The Verifying phase's steps: read the manifest, check its signature, check the install against it.</summary>
    private const int VerifySteps = 3;

    /// <summary>
    /// Everything after the signature check. Only for callers that have verified the package themselves (with the key
    /// ids that verified it, which the transaction row records).
    /// </summary>
    internal static ApplyResult ApplyVerified(EngineSettings engine, string installDir, PatchPackage package, IReadOnlyList<string> keyIds,
        PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var log = options.Logger;
        var fs = engine.FileSystem;
        progress = ProgressTracker.Wrap(progress, options.TimeProvider);
        var layout = ResolveLayout(fs, engine, installDir, options);
        RequireInstallDirectory(fs, layout.InstallDir);
        var manifest = package.Manifest;
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 2, VerifySteps, 0, 0) { CurrentItem = "install files" });
        log.LogInformation(PatcherLogEvents.PatchVerified, "Patch {Product} {From} -> {To} verified (keys {Keys})", manifest.Product, manifest.FromVersion ?? "(full)", manifest.Version, string.Join(",", keyIds));

        var (strategy, stateInside) = ChooseStrategy(fs, layout, options);
        strategy = CheckRunningPrograms(layout, options, strategy);
        if (stateInside) layout = InsideLayout(engine, layout.InstallDir);
        // Whether the state exists is asked of the layout actually used (it may just have moved inside the install).
        var stateExisted = fs.Stat(layout.StateDir).Kind == EntryKind.Directory;
        TransactionLock? txLock = null;
        JournalStore? journal = null;
        try
        {
            InstalledRecord? installed = null;
            TxRecord? resumable = null;
            var unknownInstall = false;
            if (stateExisted)
            {
                StateTrust.Require(fs, layout);
                txLock = TransactionLock.TryAcquire(layout.LockPath);
                if (txLock is null) return Busy(strategy);
                journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, log);
                resumable = Recoverer.RecoverPending(fs, layout, journal, log, RollForwardTrust.From(options), resumeManifestHash: package.ManifestHash, StrategyName(strategy), LockRetry.For(fs, options, layout.InstallDir));
                installed = InstalledHere(fs, layout, journal, resumable, log, ref unknownInstall);
            }

            var installedManifest = Preflight(installed, manifest, options);
            var plan = CreatePlan(fs, layout, manifest, installedManifest, options, unknownInstall, progress, ct);
            CheckFreeSpace(fs, layout, plan);
            progress?.Report(new PatchProgress(PatchPhase.Verifying, VerifySteps, VerifySteps, 0, 0));

            // ---- From here on the disk changes; first the state directory and the journal. ----
            var createdState = false;
            List<string> madeParents = [];
            if (!stateExisted)
            {
                createdState = fs.Stat(layout.StateDir).Kind == EntryKind.Missing;
                if (TryCreateStateDirectory(fs, layout, log) is { } parents) madeParents = parents;
                else
                {
                    // Nothing beside the install can be written: the only place left is inside it, and only the
                    // layered commit works from there (a swap would rename the directory holding its own state).
                    if (options.Strategy == CommitStrategy.Swap)
                        throw new PatcherException(PatchErrorCode.AccessDenied, $"the swap strategy needs a writable directory beside the install ('{layout.StateDir}' cannot be created); use auto or layered", layout.StateDir);
                    layout = InsideLayout(engine, layout.InstallDir);
                    strategy = CommitStrategy.Layered;
                    log.LogWarning(PatcherLogEvents.StateInsideInstall, "Cannot write beside {Install}; keeping the update's state inside it at {State} (layered strategy)", layout.InstallDir, layout.StateDir);
                    createdState = fs.Stat(layout.StateDir).Kind == EntryKind.Missing;
                    fs.CreateDirectory(layout.StateDir);
                    fs.SyncDirectory(layout.InstallDir);
                }

                if (createdState) StateTrust.Restrict(fs, layout.StateDir);
                StateTrust.Require(fs, layout);
                txLock = TransactionLock.TryAcquire(layout.LockPath);
                if (txLock is null) return Busy(strategy);
                journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, log);
                // SQLite fsyncs its file but not the directory entry of a database it just created. (In the
                // power-loss simulation the journal lives on the real disk, outside the simulated file system.)
                if (layout.JournalDir == layout.StateDir) fs.SyncDirectory(layout.StateDir);
                resumable = Recoverer.RecoverPending(fs, layout, journal, log, RollForwardTrust.From(options), resumeManifestHash: package.ManifestHash, StrategyName(strategy), LockRetry.For(fs, options, layout.InstallDir));
                var raced = InstalledHere(fs, layout, journal, resumable, log, ref unknownInstall);
                if (raced is not null || !createdState)
                {
                    // Another applier made the state directory between our check and our mkdir. It may have finished
                    // (check again against what it installed), or crashed, in which case the recovery above may have
                    // changed the install since our walk: plan again from the install as it is now.
                    installed = raced;
                    if (raced is not null) installedManifest = Preflight(installed, manifest, options);
                    plan = CreatePlan(fs, layout, manifest, installedManifest, options, unknownInstall, progress, ct);
                }
            }

            // Every blob is read, hashed and written once, before the transaction's first journal row: a corrupt or
            // hostile blob is refused with nothing to undo but what was received, the marker (and a state directory
            // made just now). The marker comes first, so that a crash while receiving is cleaned up by Recover.
            var txId = resumable?.Id ?? NewTxId(options.TimeProvider);
            if (resumable is null) TreeOps.WriteDurably(fs, layout.PendingMarkerPath, System.Text.Encoding.UTF8.GetBytes(txId));
            var stager = new Stager(fs, journal!, log);
            try
            {
                progress?.Report(new PatchProgress(PatchPhase.Staging, 0, manifest.Blobs.Count + manifest.Recipes.Count, 0, plan.BytesToWrite));
                stager.Receive(layout.IncomingDir, plan, package, options.LinkPatchBlobs, progress, ct);
            }
            catch (Exception ex) when (ex is OperationCanceledException or PatcherException || NativeErrors.IsEnvironmentFailure(ex))
            {
                log.LogWarning(PatcherLogEvents.StagingFailed, "Receiving the patch's blobs failed ({Reason}); nothing was changed", ex.Message);
                try
                {
                    TreeOps.DeleteTree(fs, layout.IncomingDir);
                    if (resumable is null) Recoverer.RemoveMarker(fs, layout);
                    // The state directory goes too if this apply made it and nobody else has used it since: another
                    // applier may have created it between our check and our mkdir, installed, and released the lock.
                    if (createdState && journal is not null && !journal.HasHistory())
                    {
                        journal.Dispose();
                        journal = null;
                        RemoveStateDirectory(fs, layout, txLock, madeParents);
                        txLock = null;
                    }
                }
                catch (Exception cleanup) when (cleanup is PatcherException || NativeErrors.IsEnvironmentFailure(cleanup))
                {
                    // The launcher needs the refusal's reason, not the follow-on failure.
                    log.LogWarning("Could not remove what was received for the refused patch ({Reason}); the next apply does", cleanup.Message);
                }

                if (ex is OperationCanceledException)
                    throw Cancelled(ex);
                throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "receive the patch into", layout.IncomingDir);
            }

            try
            {
                return strategy switch
                {
                    CommitStrategy.Swap => ApplySwap(fs, layout, journal!, stager, txId, package, plan, installed, resumable, keyIds, options, progress, ct),
                    _ => ApplyLayered(fs, layout, journal!, stager, txId, package, plan, installed, resumable, keyIds, options, progress, ct),
                };
            }
            catch (Exception ex) when (ex is PatcherException or OperationCanceledException)
            {
                // Whatever reached the trash (the received blobs, an old tree) is garbage whichever way this ended.
                Recoverer.EmptyTrash(fs, layout, log);
                throw;
            }
        }
        finally
        {
            journal?.Dispose();
            txLock?.Dispose();
        }
    }

    private static ApplyResult ApplySwap(IFileOps fs, StateLayout layout, JournalStore journal, Stager stager, string txId, PatchPackage package, ApplyPlan plan,
        InstalledRecord? installed, TxRecord? resumable, IReadOnlyList<string> keyIds, PatcherOptions options,
        IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var log = options.Logger;
        var manifest = package.Manifest;
        var resumed = resumable is not null;
        var tx = BeginOrResume(journal, txId, resumable, package, installed, keyIds, options, CommitStrategy.Swap);
        var installedAfter = InstalledAfter(package, installed, tx.KeepPrevious);

        var staging = layout.StagingDir(tx.Id);
        EntryInfo identity = default;
        try
        {
            progress?.Report(new PatchProgress(PatchPhase.Staging, 0, plan.Files.Count, stager.BytesWritten, plan.BytesToWrite));
            stager.Stage(tx.Id, layout.InstallDir, staging, plan, package, resumed ? journal.Files(tx.Id) : new Dictionary<string, FileRow>(), progress, ct);
            stager.ReleaseReceived(layout, tx.Id);
            InstallOwner.Apply(fs, layout.InstallDir, staging);
            identity = fs.Stat(staging);
            journal.MarkBackupComplete(tx.Id, identity.Device, identity.Inode);
            // Last point at which cancelling is honoured: after this the switch is one step.
            ct.ThrowIfCancellationRequested();
        }
        catch (Exception ex) when (ex is OperationCanceledException or PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            log.LogWarning(PatcherLogEvents.StagingFailed, "Staging of {Tx} failed ({Reason}); rolling back", tx.Id, ex.Message);
            try
            {
                Recoverer.RollBackStarted(fs, layout, journal, tx.Id, log);
            }
            catch (Exception rollbackFailure) when (rollbackFailure is PatcherException || NativeErrors.IsEnvironmentFailure(rollbackFailure))
            {
                // The install was never touched; the transaction stays pending and the next Recover or Apply
                // finishes the rollback. The launcher needs the original cause, not the follow-on failure.
                log.LogWarning("Rolling back {Tx} failed too ({Reason}); recovery will finish it", tx.Id, rollbackFailure.Message);
            }

            ReleaseReceivedAfterRollback(stager, layout, tx.Id, log);

            if (ex is OperationCanceledException)
                throw Cancelled(ex);
            throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "stage", staging);
        }

        progress?.Report(new PatchProgress(PatchPhase.Committing, 0, 1, 0, 0));
        if (Recoverer.SwitchOrRollBack(fs, layout, journal, tx with { StagingDevice = identity.Device, StagingInode = identity.Inode }, log) is { } failure)
            throw Recoverer.RolledBack(failure);
        IReadOnlyList<string> left;
        try
        {
            journal.MarkPatched(tx.Id, installedAfter.GetAwaiter().GetResult(), InstallIdentity.Establish(fs, layout.InstallDir));
            progress?.Report(new PatchProgress(PatchPhase.CleaningUp, 0, 1, 0, 0));
            left = Recoverer.FinishPatched(fs, layout, journal, tx with { State = TxState.Patched }, log, plan);
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            throw NewVersionInPlace(ex, layout, manifest.Version);
        }

        progress?.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));
        log.LogInformation(PatcherLogEvents.Installed, "Installed {Product} {Version} (transaction {Tx})", manifest.Product, manifest.Version, tx.Id);
        return new ApplyResult(ApplyStatus.Applied, installed?.Version ?? manifest.FromVersion, manifest.Version, tx.Id, CommitStrategy.Swap,
            resumed, stager.FilesWritten, stager.FilesReused, stager.BytesWritten) { Cleanup = EmptyTrash(fs, layout, options), EntriesLeftBehind = left };
    }

    /// <summary>
    /// After staging failed and was rolled back: what was received goes to the trash (emptied when the error leaves), so
    /// nothing of the update is left behind. Best effort: the next Apply or Recover removes it otherwise, and the launcher
    /// needs the staging failure's reason, not this one.
    /// </summary>
    private static void ReleaseReceivedAfterRollback(Stager stager, StateLayout layout, string txId, ILogger log)
    {
        try
        {
            stager.ReleaseReceived(layout, txId);
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            log.LogWarning("Could not move the blobs received for {Tx} to the trash ({Reason}); the next Apply or Recover removes them", txId, ex.Message);
        }
    }

    /// <summary>
    /// A failure after the commit: the install is the new version. What failed is bookkeeping (carrying over late user
    /// files or displaced ones, removing the old tree or the backups, the done row); the transaction stays pending and
    /// the next Recover or Apply finishes it. The launcher is told so, rather than the pre-commit "old version intact".
    /// </summary>
    private static PatcherException NewVersionInPlace(Exception ex, StateLayout layout, string version)
    {
        var cleanup = NativeErrors.FromException(ex, "finish the update", layout.InstallDir);
        return new PatcherException(cleanup.Code,
            $"{cleanup.Message}; the new version {version} is in place, and the next Patcher.Recover finishes the cleanup",
            cleanup.Path, ex) { NativeError = cleanup.NativeError, NewVersionInPlace = true };
    }

    /// <summary>
    /// What the journal will say is installed once the switch is done, computed while staging waits on the disk
    /// rather than between the switch and the <c>patched</c> row. (A first update of an install Patcher did not
    /// install, when it keeps the old tree, builds and serialises the previous version's manifest from the patch's base
    /// list: about half a second at 100k files.) Pure computation, no file-system access.
    /// </summary>
    private static Task<InstalledRecord> InstalledAfter(PatchPackage package, InstalledRecord? installed, bool keepsPreviousTree) =>
        Task.Run(() => InstalledRecord.After(package.Manifest, package.ManifestBytes, package.ManifestHash, installed, keepsPreviousTree));

    /// <summary>
    /// Deletes the trash (this transaction's old tree and received blobs, and any an earlier process left), on a background task
    /// when the options allow. Inline on a task scheduler that runs one task at a time (such as the power-loss
    /// simulation's, which needs the same sequence of file operations on every run). Runs without the transaction
    /// lock: nothing in the trash belongs to any version, and a concurrent deleter only makes it log and leave the rest.
    /// </summary>
    private static Task EmptyTrash(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        if (!options.CleanupInBackground || Parallelism.OneTaskAtATime)
        {
            Recoverer.EmptyTrash(fs, layout, options.Logger);
            return Task.CompletedTask;
        }

        return Task.Run(() => Recoverer.EmptyTrash(fs, layout, options.Logger));
    }

    /// <summary>
    /// The layered commit (DESIGN §4): stage only the files that change, back up the ones they replace, then
    /// replace file by file through the lock layers, journaling each. A failure after the first file changed
    /// (a lock outlasting its budget, a full disk) rolls every file back before the error leaves.
    /// </summary>
    private static ApplyResult ApplyLayered(IFileOps fs, StateLayout layout, JournalStore journal, Stager stager, string txId, PatchPackage package, ApplyPlan plan,
        InstalledRecord? installed, TxRecord? resumable, IReadOnlyList<string> keyIds, PatcherOptions options,
        IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var log = options.Logger;
        var manifest = package.Manifest;
        var resumed = resumable is not null;
        var tx = BeginOrResume(journal, txId, resumable, package, installed, keyIds, options, CommitStrategy.Layered);
        // The layered strategy keeps no old tree (KeepPreviousVersion is not supported there, see below).
        var installedAfter = InstalledAfter(package, installed, keepsPreviousTree: false);

        var retry = LockRetry.For(fs, options, layout.InstallDir);
        var commit = new LayeredCommit(fs, layout, journal, retry, log);
        RemoveStaleBackups(fs, layout, tx.Id, log);
        var staging = layout.StagingDir(tx.Id);
        int changed;
        try
        {
            var (ops, toStage) = LayeredCommit.Plan(fs, layout, plan);
            changed = toStage.Count;
            var restaged = toStage.Select(t => t.File.Path).ToHashSet(StringComparer.Ordinal);
            stager.KeepUnlinked(plan.Files.Select(f => f.File.Path).Where(p => !restaged.Contains(p)));
            var stagePlan = new ApplyPlan
            {
                Manifest = manifest,
                Files = toStage,
                UserEntries = [],
                OldVersionPaths = plan.OldVersionPaths,
                BytesToWrite = toStage.Where(s => s.ReuseFrom is null).Sum(s => s.File.Size),
                StagesWholeTree = false,
            };
            progress?.Report(new PatchProgress(PatchPhase.Staging, 0, toStage.Count, 0, stagePlan.BytesToWrite));
            stager.Stage(tx.Id, layout.InstallDir, staging, stagePlan, package, resumed ? journal.Files(tx.Id) : new Dictionary<string, FileRow>(), progress, ct);
            stager.ReleaseReceived(layout, tx.Id);
            InstallOwner.Apply(fs, layout.InstallDir, staging);
            // Last point at which cancelling is honoured without touching the install.
            ct.ThrowIfCancellationRequested();
            commit.PrepareBackups(tx.Id, ops);
        }
        catch (Exception ex) when (ex is OperationCanceledException or PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            log.LogWarning(PatcherLogEvents.StagingFailed, "Staging of {Tx} failed ({Reason}); rolling back", tx.Id, ex.Message);
            try
            {
                Recoverer.RollBackLayeredStarted(fs, layout, journal, tx.Id, retry, log);
            }
            catch (Exception rollbackFailure) when (rollbackFailure is PatcherException || NativeErrors.IsEnvironmentFailure(rollbackFailure))
            {
                // The install was never touched; the transaction stays pending and the next Recover or Apply
                // finishes the rollback. The launcher needs the original cause, not the follow-on failure.
                log.LogWarning("Rolling back {Tx} failed too ({Reason}); recovery will finish it", tx.Id, rollbackFailure.Message);
            }

            ReleaseReceivedAfterRollback(stager, layout, tx.Id, log);

            if (ex is OperationCanceledException)
                throw Cancelled(ex);
            throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "stage", staging);
        }

        progress?.Report(new PatchProgress(PatchPhase.Committing, 0, changed, 0, 0));
        try
        {
            commit.Forward(tx.Id, progress is null ? null : new FilesPlaced(progress, changed));
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            var failure = NativeErrors.FromException(ex, "commit", layout.InstallDir);
            log.LogError(PatcherLogEvents.CommitFailed, "Commit of {Tx} failed ({Reason}); rolling every file back", tx.Id, failure.Message);
            try
            {
                Recoverer.RollBackLayered(fs, layout, journal, tx.Id, retry, log);
            }
            catch (Exception rollbackError) when (rollbackError is PatcherException || NativeErrors.IsEnvironmentFailure(rollbackError))
            {
                var rollbackFailure = NativeErrors.FromException(rollbackError, "roll back", layout.InstallDir);
                throw new PatcherException(rollbackFailure.Code,
                    $"{failure.Message}; rolling back then failed too ({rollbackFailure.Message}). The install may be a mix of versions until Patcher.Recover completes; run it once the cause above is gone",
                    rollbackFailure.Path ?? failure.Path, ex) { NativeError = rollbackFailure.NativeError };
            }

            throw new PatcherException(failure.Code, failure.Message + ". The update was rolled back: the old version is intact", failure.Path, ex) { NativeError = failure.NativeError };
        }

        try
        {
            // Every file is placed: from here on a failure leaves the new version, as after the swap's exchange.
            journal.MarkPatched(tx.Id, installedAfter.GetAwaiter().GetResult(), InstallIdentity.Establish(fs, layout.InstallDir));
            progress?.Report(new PatchProgress(PatchPhase.CleaningUp, 0, 1, 0, 0));
            Recoverer.FinishLayered(fs, layout, journal, tx.Id, retry, log);
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            throw NewVersionInPlace(ex, layout, manifest.Version);
        }

        if (tx.KeepPrevious)
            log.LogWarning("KeepPreviousVersion is not supported by the layered strategy: only the replaced files were backed up, and they are removed");
        progress?.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));
        log.LogInformation(PatcherLogEvents.Installed, "Installed {Product} {Version} (transaction {Tx}, layered, {Changed} files changed)", manifest.Product, manifest.Version, tx.Id, changed);
        return new ApplyResult(ApplyStatus.Applied, installed?.Version ?? manifest.FromVersion, manifest.Version, tx.Id, CommitStrategy.Layered,
            resumed, stager.FilesWritten, plan.Files.Count - stager.FilesWritten, stager.BytesWritten) { Cleanup = EmptyTrash(fs, layout, options) };
    }

    /// <summary>The layered commit's count of files placed, as Committing progress.</summary>
    private sealed class FilesPlaced(IProgress<PatchProgress> progress, int total) : IProgress<int>
    {
        public void Report(int value) => progress.Report(new PatchProgress(PatchPhase.Committing, value, total, 0, 0));
    }

    /// <summary>
    /// Staging and backup areas of finished layered updates that could not be removed then (an old executable was
    /// still running). Runs after pending transactions were recovered, so none of these belongs to one.
    /// </summary>
    private static void RemoveStaleBackups(IFileOps fs, StateLayout layout, string txId, ILogger log)
    {
        foreach (var name in fs.ListNames(layout.StateDir).Where(n => (n.StartsWith("backup-", StringComparison.Ordinal) || n.StartsWith("staging-", StringComparison.Ordinal))
                     && n != "backup-" + txId && n != "staging-" + txId).ToList())
        {
            try
            {
                TreeOps.DeleteTree(fs, Path.Join(layout.StateDir, name));
            }
            catch (PatcherException ex)
            {
                log.LogWarning("Stale backup area {Name} is still in use ({Reason}); left for later", name, ex.Message);
            }
        }
    }

    /// <summary>
    /// The <c>started</c> row of a new transaction, or the interrupted one being resumed. (The pending marker was
    /// written before the blobs were received: recovery already looks at the journal.)
    /// </summary>
    private static TxRecord BeginOrResume(JournalStore journal, string txId, TxRecord? resumable, PatchPackage package, InstalledRecord? installed,
        IReadOnlyList<string> keyIds, PatcherOptions options, CommitStrategy strategy)
    {
        if (resumable is not null)
        {
            options.Logger.LogInformation(PatcherLogEvents.StagingResumed, "Resuming interrupted staging of transaction {Tx}", resumable.Id);
            return resumable;
        }

        var tx = NewTx(txId, package, installed, keyIds, options, StrategyName(strategy));
        journal.Begin(tx);
        return tx;
    }

    private static TxRecord NewTx(string id, PatchPackage package, InstalledRecord? installed, IReadOnlyList<string> keyIds, PatcherOptions options, string strategy) => new()
    {
        Id = id,
        Kind = TxKind.Apply,
        Product = package.Manifest.Product,
        FromVersion = installed?.Version ?? package.Manifest.FromVersion,
        ToVersion = package.Manifest.Version,
        ManifestHash = package.ManifestHash,
        Manifest = package.ManifestBytes,
        Signature = package.Envelope is null ? null : System.Text.Encoding.UTF8.GetString(ManifestCodec.SerializeEnvelope(package.Envelope)),
        KeyIds = string.Join(",", keyIds),
        Strategy = strategy,
        State = TxState.Started,
        KeepPrevious = options.KeepPreviousVersion,
    };

    private static string StrategyName(CommitStrategy strategy) => strategy == CommitStrategy.Swap ? "swap" : "layered";

    /// <summary>
    /// Where the state of this install is: inside it when an earlier layered update had to put it there,
    /// otherwise the configured or default directory beside it. One stat.
    /// </summary>
    internal static StateLayout ResolveLayout(IFileOps fs, EngineSettings engine, string installDir, PatcherOptions options)
    {
        var primary = engine.Layout(installDir, options);
        RequireStateOutsideInstall(primary);
        var inside = InsideLayout(engine, primary.InstallDir);
        return fs.Stat(inside.StateDir).Kind == EntryKind.Directory ? inside : primary;
    }

    /// <summary>Refuses, before anything is touched, a configured state directory that overlaps the install (Patcher's own inside one apart).</summary>
    private static void RequireStateOutsideInstall(StateLayout layout)
    {
        if (LayeredCommit.StateInside(layout)) return;
        var comparison = PathRules.PlatformIgnoresCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        bool Within(string path, string dir) => path.Equals(dir, comparison) || path.StartsWith(dir + Path.DirectorySeparatorChar, comparison);
        if (Within(layout.StateDir, layout.InstallDir) || Within(layout.InstallDir, layout.StateDir))
            throw new PatcherException(PatchErrorCode.StateDirectoryInsideInstall,
                $"the state directory '{layout.StateDir}' overlaps the install '{layout.InstallDir}'; choose one beside it", layout.StateDir);
    }

    private static StateLayout InsideLayout(EngineSettings engine, string installDir) =>
        new(installDir, Path.Join(Path.TrimEndingDirectorySeparator(installDir), LayeredCommit.InsideStateName), engine.JournalDirectory);

    /// <summary>
    /// The plan, minus the state directory when it lives inside the install (it is never the user's). The base is checked
    /// by hash when the options ask for it, and for an install the journal does not recognise (<paramref name="unknownInstall"/>):
    /// its files are then known only by what they hold.
    /// </summary>
    private static ApplyPlan CreatePlan(IFileOps fs, StateLayout layout, Manifest manifest, Manifest? installedManifest, PatcherOptions options, bool unknownInstall,
        IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var plan = ApplyPlan.Create(fs, layout.InstallDir, manifest, installedManifest, options.VerifyBaseHashes || unknownInstall, ct, progress: progress);
        if (!LayeredCommit.StateInside(layout)) return plan;
        return new ApplyPlan
        {
            Manifest = plan.Manifest,
            Files = plan.Files,
            UserEntries = plan.UserEntries.Where(e => !LayeredCommit.IsStatePath(layout, e.Path)).ToList(),
            OldVersionPaths = plan.OldVersionPaths,
            BytesToWrite = plan.BytesToWrite,
            InstallEntries = plan.InstallEntries,
            InstallDir = plan.InstallDir,
        };
    }

    /// <summary>
    /// Removes a state directory this apply created, for a patch refused before its first journal row. It is renamed
    /// aside while the lock is still held, so a process arriving meanwhile finds no state directory and makes its own,
    /// rather than a half-deleted one (or a new lock file beside ours); then the lock is released and the renamed tree
    /// deleted.
    /// </summary>
    /// <remarks>
    /// Windows refuses to rename a directory while a file in it is open, and our lock file is. There the lock is released
    /// first and the rename tried once more. A process that took the lock in between holds the lock file open, so the
    /// rename is refused again and the directory stays: it is that process's now. One that had only seen the directory
    /// exist and opens the lock after the rename gets an error, not a half-deleted state.
    /// </remarks>
    private static void RemoveStateDirectory(IFileOps fs, StateLayout layout, TransactionLock? txLock, List<string> madeParents)
    {
        var aside = layout.StateDir + ".refused-" + StateLayout.RandomTag();
        try
        {
            fs.Rename(layout.StateDir, aside);
        }
        catch (PatcherException ex) when (txLock is not null && ex.Code is PatchErrorCode.AccessDenied or PatchErrorCode.FileLocked)
        {
            txLock.Dispose();
            txLock = null;
            fs.Rename(layout.StateDir, aside);
        }
        finally
        {
            txLock?.Dispose();
        }

        TreeOps.DeleteTree(fs, aside);
        RemoveEmptyDirectories(fs, madeParents);
    }

    /// <summary>
    /// Creates the state directory beside the install, or where <see cref="PatcherOptions.StateDirectory"/> says, with
    /// any of its parents that do not exist yet (a launcher's folder on its first run). Each directory made is fsynced
    /// in its parent: the journal is only durable if every name on its path is. Returns the parents made, deepest first;
    /// null when a parent refuses (read-only, no permission), after removing what it made.
    /// </summary>
    private static List<string>? TryCreateStateDirectory(IFileOps fs, StateLayout layout, ILogger log)
    {
        var made = new List<string>(); // outermost first
        try
        {
            TreeOps.CreateDirectoriesDurably(fs, layout.StateDir, made);
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.AccessDenied && !LayeredCommit.StateInside(layout))
        {
            log.LogInformation("Cannot create {State}: {Reason}", layout.StateDir, ex.Message);
            made.Reverse();
            RemoveEmptyDirectories(fs, made);
            return null;
        }

        // Made by another applier meanwhile: its entry is synced here too, as the journal is about to live in it.
        if (!made.Remove(layout.StateDir)) fs.SyncDirectory(Path.GetDirectoryName(layout.StateDir)!);
        made.Reverse(); // deepest first, for RemoveEmptyDirectories; the state directory itself goes with RemoveStateDirectory
        return made;
    }

    /// <summary>Removes directories this apply made, deepest first, stopping at the first that something else now uses.</summary>
    private static void RemoveEmptyDirectories(IFileOps fs, List<string> made)
    {
        foreach (var dir in made)
        {
            if (fs.ListNames(dir).Any()) return;
            fs.DeleteDirectory(dir);
            fs.SyncDirectory(Path.GetDirectoryName(dir)!);
        }
    }

    public static RecoveryResult Recover(string installDir, PatcherOptions options) => Recover(Default, installDir, options);

    public static RecoveryResult Recover(EngineSettings engine, string installDir, PatcherOptions options) =>
        NativeErrors.Guard("recover", installDir, () => RecoverCore(engine, installDir, options));

    private static RecoveryResult RecoverCore(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var fs = engine.FileSystem;
        var layout = ResolveLayout(fs, engine, installDir, options);
        // The cheap path every app start takes: three existence checks (state inside the install, the marker, the
        // trash a launcher may have left when it exited before its background cleanup finished).
        if (fs.Stat(layout.PendingMarkerPath).Kind == EntryKind.Missing)
        {
            // Left-over old files are deleted off the app's start-up path (a 20k-file trash takes seconds).
            if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) return new RecoveryResult(RecoveryOutcome.NothingPending, null, null);
            StateTrust.Require(fs, layout);
            return new RecoveryResult(RecoveryOutcome.NothingPending, null, null) { Cleanup = EmptyTrash(fs, layout, options) };
        }

        return RecoverPending(fs, layout, options);
    }

    /// <summary>
    /// The part of <see cref="RecoverCore"/> that runs only when the marker exists. A method of its own, never
    /// inlined, so that compiling the cheap path does not load the lock and journal (SQLite) types.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static RecoveryResult RecoverPending(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        StateTrust.Require(fs, layout);
        using var txLock = TransactionLock.TryAcquire(layout.LockPath);
        if (txLock is null) return new RecoveryResult(RecoveryOutcome.Busy, null, null);
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, transactionPending: true, options.Logger);
        var pending = journal.Pending();
        var outcome = RecoveryOutcome.NothingPending;
        if (pending is not null)
        {
            var forward = Recoverer.Recover(fs, layout, journal, pending, options.Logger, RollForwardTrust.From(options), LockRetry.For(fs, options, layout.InstallDir));
            outcome = forward ? RecoveryOutcome.RolledForward : RecoveryOutcome.RolledBack;
        }
        else
        {
            Recoverer.ResolveWithoutJournalRow(fs, layout, options.Logger);
        }

        // A cleanup interrupted after the done row (the marker could not be removed) left its trash too, and blobs
        // received for a transaction that never began are of no use (under the lock, no apply is using them).
        Recoverer.EmptyTrash(fs, layout, options.Logger);
        TreeOps.DeleteTree(fs, layout.IncomingDir);
        var version = journal.Installed()?.Version;
        options.Logger.LogInformation(PatcherLogEvents.RecoveryOutcome, "Recovery of {Install}: {Outcome} (transaction {Tx}); installed version {Version}",
            layout.InstallDir, outcome, pending?.Id ?? "none", version ?? "unknown");
        return new RecoveryResult(outcome, pending?.Id, version);
    }

    public static InstallStatus Status(string installDir, PatcherOptions options) => Status(Default, installDir, options);

    public static InstallStatus Status(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var layout = ResolveLayout(engine.FileSystem, engine, installDir, options);
        // The marker exists from the first received blob to the done row: an apply is running when its lock is held,
        // and interrupted (Recover's job) when it is not. Without a marker nothing has changed yet, so no probe.
        var running = File.Exists(layout.PendingMarkerPath) && TransactionLock.IsHeld(layout.LockPath);
        var unknown = new InstallStatus(null, null, null, null, null) { UpdateInProgress = running };
        if (!File.Exists(layout.JournalPath)) return unknown;
        using var journal = JournalStore.OpenForReading(layout.JournalPath, layout.InstallDir);
        if (journal is null) return unknown;
        var installed = journal.Installed();
        var pending = journal.Pending();
        if (installed is not null && pending is null
            && !InstallIdentity.Matches(journal.RecordedInstallIdentity(), InstallIdentity.Read(engine.FileSystem, layout.InstallDir)))
            return unknown with { ReplacedInstallVersion = installed.Version };
        var previous = Directory.Exists(layout.PreviousDir) ? installed?.PreviousVersion : null;
        return new InstallStatus(installed?.Product, installed?.Version, pending?.Id, pending?.State, previous) { UpdateInProgress = running };
    }

    public static VerifyReport Verify(string installDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        progress = ProgressTracker.Wrap(progress, options.TimeProvider);
        var layout = ResolveLayout(Default.FileSystem, Default, installDir, options);
        if (!File.Exists(layout.JournalPath))
            throw NotManaged(layout, "no journal");
        Manifest manifest;
        using (var journal = JournalStore.OpenForReading(layout.JournalPath, layout.InstallDir))
        {
            var installed = journal?.Installed()
                ?? throw NotManaged(layout, "its journal records no installed version");
            manifest = ManifestCodec.Deserialize(installed.Manifest);
        }

        var missing = new System.Collections.Concurrent.ConcurrentBag<string>();
        var modified = new System.Collections.Concurrent.ConcurrentBag<string>();
        var fs = Default.FileSystem;
        // Reported as it reads: bytes hashed against the installed version's size, files as each one is finished.
        var files = manifest.Files.Count;
        var bytesTotal = manifest.Files.Sum(f => f.Size);
        long bytesRead = 0;
        var filesDone = 0;
        void Report(string? item) =>
            progress?.Report(new PatchProgress(PatchPhase.Verifying, Volatile.Read(ref filesDone), files, Interlocked.Read(ref bytesRead), bytesTotal) { CurrentItem = item });
        Report(null);
        Parallelism.ForEach(manifest.Files.OrderByDescending(f => f.Size), ct, f =>
        {
            var match = ContentHash.Compare(fs, PathRules.Join(layout.InstallDir, f.Path), f.Size, f.Sha256, ct,
                progress is null ? null : n =>
                {
                    Interlocked.Add(ref bytesRead, n);
                    Report(f.Path);
                });
            Interlocked.Increment(ref filesDone);
            Report(f.Path);
            switch (match)
            {
                case FileMatch.Missing:
                    missing.Add(f.Path);
                    break;
                case FileMatch.Differs:
                    modified.Add(f.Path);
                    break;
            }
        });
        progress?.Report(new PatchProgress(PatchPhase.Done, files, files, bytesTotal, bytesTotal));
        return new VerifyReport(manifest.Version, manifest.Files.Count,
            missing.Order(StringComparer.Ordinal).ToList(), modified.Order(StringComparer.Ordinal).ToList());
    }

    private static PatcherException NotManaged(StateLayout layout, string why) =>
        new(PatchErrorCode.NotManagedByPatcher,
            $"Patcher has not installed a version in '{layout.InstallDir}' ({why} at '{layout.JournalPath}'), so there is nothing to verify it against",
            layout.InstallDir);

    public static ApplyResult Rollback(string installDir, PatcherOptions options) =>
        Recoverer.RollbackToPrevious(Default.FileSystem, ResolveLayout(Default.FileSystem, Default, installDir, options), options);

    /// <summary>
    /// What the journal says is installed, unless the install directory is no longer the one it said so of (deleted and
    /// copied back, restored from a backup: <see cref="InstallIdentity"/>). Then the install is unknown, as if Patcher
    /// had never touched it: <paramref name="unknownInstall"/> is set, and the patch's base is checked by hash instead of
    /// the journal's version. Not asked while a transaction is being resumed: mid-update the directory may be the staged
    /// one, whose identity the journal records only at the commit.
    /// </summary>
    private static InstalledRecord? InstalledHere(IFileOps fs, StateLayout layout, JournalStore journal, TxRecord? resumable, ILogger log, ref bool unknownInstall)
    {
        var installed = journal.Installed();
        if (installed is null || resumable is not null
            || InstallIdentity.Matches(journal.RecordedInstallIdentity(), InstallIdentity.Read(fs, layout.InstallDir))) return installed;
        log.LogWarning("{Install} is not the directory the journal recorded version {Version} for (it was replaced, restored or copied back); treating it as an unknown install and checking the patch's base by hash",
            layout.InstallDir, installed.Version);
        unknownInstall = true;
        return null;
    }

    /// <summary>Checks the patch against what the journal says is installed. Returns the installed manifest, if known.</summary>
    private static Manifest? Preflight(InstalledRecord? installed, Manifest manifest, PatcherOptions options)
    {
        if (installed is null) return null;
        if (!string.Equals(installed.Product, manifest.Product, StringComparison.Ordinal))
            throw new PatcherException(PatchErrorCode.WrongProduct, $"patch is for product '{manifest.Product}' but '{installed.Product}' is installed");
        var have = PatchVersion.Parse(installed.Version, "installed version");
        var want = PatchVersion.Parse(manifest.Version, "version");
        if (want <= have && !options.AllowDowngrade)
            throw new PatcherException(PatchErrorCode.NotNewer, $"version {manifest.Version} is not newer than the installed {installed.Version}");
        if (manifest.FromVersion is not null && manifest.FromVersion != installed.Version)
            throw new PatcherException(PatchErrorCode.WrongBaseVersion, $"patch updates from {manifest.FromVersion} but {installed.Version} is installed");
        return ManifestCodec.Deserialize(installed.Manifest);
    }

    private static void RequireInstallDirectory(IFileOps fs, string installDir)
    {
        var kind = fs.Stat(installDir).Kind;
        if (kind == EntryKind.Missing)
            throw new PatcherException(PatchErrorCode.InstallNotFound, $"install directory '{installDir}' does not exist", installDir);
        if (kind == EntryKind.Symlink)
            throw new PatcherException(PatchErrorCode.SymlinkEscape, $"install path '{installDir}' is a symlink, not a plain directory", installDir);
        if (kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.InstallNotADirectory, $"install path '{installDir}' is {(kind == EntryKind.File ? "a file" : "not a directory")}; pass the install's folder", installDir);
    }

    /// <summary>
    /// Swap where it can work; layered otherwise: off Linux, or when the install is a mount point or the configured
    /// state directory is on another device (a rename across devices is a copy). In those two cases nothing beside
    /// the install is on its volume, so the state goes inside it. A state that already exists stays where it is.
    /// </summary>
    private static (CommitStrategy Strategy, bool StateInside) ChooseStrategy(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        var requested = options.Strategy;
        var inside = LayeredCommit.StateInside(layout);
        var otherDevice = !inside && (StateOnOtherDevice(fs, layout) || fs.IsMountPoint(layout.InstallDir));
        if (requested == CommitStrategy.Layered || inside) return (CommitStrategy.Layered, otherDevice);
        if (requested == CommitStrategy.Swap && !SwapCommit.IsSupported)
            throw new PatcherException(PatchErrorCode.IOFailure, "the swap strategy needs Linux (directory exchange with identity checks); use auto or layered", layout.InstallDir);
        if (otherDevice)
        {
            if (requested == CommitStrategy.Swap)
                throw new PatcherException(PatchErrorCode.IOFailure, $"the swap strategy needs the state directory on the install's device; '{layout.InstallDir}' is a mount point or '{layout.StateDir}' is elsewhere", layout.InstallDir);
            options.Logger.LogWarning(PatcherLogEvents.StateInsideInstall, "{Install} is not on the same device as {State}; using the layered strategy with the state inside the install", layout.InstallDir, layout.StateDir);
            return (CommitStrategy.Layered, true);
        }

        return (SwapCommit.IsSupported ? CommitStrategy.Swap : CommitStrategy.Layered, false);
    }

    /// <summary>Applies <see cref="PatcherOptions.RunningPrograms"/>: refuses, or moves a swap to the layered strategy.</summary>
    private static CommitStrategy CheckRunningPrograms(StateLayout layout, PatcherOptions options, CommitStrategy strategy)
    {
        if (options.RunningPrograms == RunningProgramPolicy.Ignore) return strategy;
        var users = RunningPrograms.Using(layout.InstallDir);
        if (users.Count == 0) return strategy;
        var named = string.Join(", ", users.Take(5).Select(u => $"{u.Name} (pid {u.ProcessId}, {u.How} {u.Path})"));
        if (options.RunningPrograms == RunningProgramPolicy.Refuse)
            throw new PatcherException(PatchErrorCode.InstallInUse, $"{users.Count} program(s) are using the install: {named}; close them and apply again", layout.InstallDir);
        if (strategy == CommitStrategy.Swap && options.Strategy == CommitStrategy.Swap)
            throw new PatcherException(PatchErrorCode.InstallInUse, $"the swap strategy was asked for, but {users.Count} program(s) are using the install: {named}", layout.InstallDir);
        if (strategy == CommitStrategy.Swap) options.Logger.LogWarning("Programs are using {Install} ({Programs}); using the layered strategy", layout.InstallDir, named);
        return CommitStrategy.Layered;
    }

    /// <summary>Device of the state directory (or its nearest existing ancestor) differs from the install's. Linux only (statx).</summary>
    private static bool StateOnOtherDevice(IFileOps fs, StateLayout layout)
    {
        var install = fs.Stat(layout.InstallDir);
        string? probe = layout.StateDir;
        var info = fs.Stat(probe);
        while (info.Kind == EntryKind.Missing && (probe = Path.GetDirectoryName(probe)) is not null) info = fs.Stat(probe);
        return install.Device != 0 && info.Device != 0 && install.Device != info.Device;
    }

    private static void CheckFreeSpace(IFileOps fs, StateLayout layout, ApplyPlan plan)
    {
        var probe = fs.Stat(layout.StateDir).Kind == EntryKind.Directory ? layout.StateDir : Path.GetDirectoryName(layout.InstallDir)!;
        var free = fs.AvailableFreeSpace(probe);
        // Written content plus a margin for directories, journal and file-system overhead.
        var need = plan.BytesToWrite + (plan.Files.Count * 4096L) + (16L << 20);
        if (free < need)
        {
            throw new PatcherException(PatchErrorCode.InsufficientSpace,
                $"{free / (1 << 20)} MiB free beside the install, {need / (1 << 20)} MiB needed to stage the new version", probe);
        }
    }

    /// <summary>
    /// Cancellation reaches the caller as the <see cref="OperationCanceledException"/> every .NET caller catches, once
    /// whatever the apply had made is undone: the old version is intact.
    /// </summary>
    private static OperationCanceledException Cancelled(Exception ex) =>
        new("apply was cancelled before commit; the old version is intact", ex, (ex as OperationCanceledException)?.CancellationToken ?? default);

    private static ApplyResult Busy(CommitStrategy strategy) => new(ApplyStatus.Busy, null, null, null, strategy, false, 0, 0, 0);

    private static string NewTxId(TimeProvider time) =>
        time.GetUtcNow().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) + "-" + StateLayout.RandomTag();
}
