using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>The swap's recovery, and the rollback to the version it kept.</summary>
internal sealed partial class SwapStrategy
{
    /// <summary>
    /// Started: the install was not touched, the staged tree goes. Backup-complete: forward when the exchange happened,
    /// when the two-rename switch was cut half-way, or when the staged tree is complete and verifies; back otherwise.
    /// Patched: finish the bookkeeping.
    /// </summary>
    public bool Recover(TxRecord tx)
    {
        switch (tx.State)
        {
            case TxState.Started:
                RollBackStarted(tx);
                return false;

            case TxState.BackupComplete:
                return CompleteSwitch(tx) && CommitStrategies.RecordRolledForward(this, context, tx);

            case TxState.Patched:
                Finish(tx, null);
                return true;

            default:
                return false;
        }
    }

    /// <summary>Brings a backup-complete transaction's switch to its end; false when it was rolled back instead.</summary>
    private bool CompleteSwitch(TxRecord tx)
    {
        var install = _fs.Stat(_layout.InstallDir);
        if (install.Kind == EntryKind.Directory && Exchanged(install, tx))
        {
            _log.LogInformation("The exchange of {Tx} had happened; rolling forward", tx.Id);
        }
        else if (install.Kind == EntryKind.Missing && _fs.Stat(_layout.OldDir(tx.Id)).Kind == EntryKind.Directory)
        {
            _log.LogInformation("Crashed between the two renames of {Tx}; completing the switch", tx.Id);
            new SwapCommit(_fs, _layout, _log).CompleteTwoRenameSwitch(tx.Id);
        }
        else if (StagedTreeIsComplete(tx))
        {
            _log.LogInformation("Staged tree of {Tx} is complete and verifies; rolling forward", tx.Id);
            if (SwitchOrRollBack(tx) is not null) return false;
        }
        else
        {
            _log.LogWarning("Staged tree of {Tx} does not verify; rolling back", tx.Id);
            RollBackStarted(tx);
            return false;
        }

        return true;
    }

    /// <summary>
    /// A swap whose exchange happened exchanges back, one whose two-rename switch was cut after the first rename puts
    /// the old tree back; then the staged tree is deleted.
    /// </summary>
    public void RollBackUnverified(TxRecord tx)
    {
        var staging = _layout.StagingDir(tx.Id);
        var install = _fs.Stat(_layout.InstallDir);
        var parent = Path.GetDirectoryName(_layout.InstallDir)!;
        if (install.Kind == EntryKind.Directory && Exchanged(install, tx))
        {
            if (!_fs.TryExchange(_layout.InstallDir, staging))
                throw new PatcherException(PatchErrorCode.IOFailure, "cannot exchange the unverified tree back out of the install", _layout.InstallDir);
            _fs.SyncDirectory(parent);
            _fs.SyncDirectory(_layout.StateDir);
        }
        else if (install.Kind == EntryKind.Missing && _fs.Stat(_layout.OldDir(tx.Id)).Kind == EntryKind.Directory)
        {
            _fs.Rename(_layout.OldDir(tx.Id), _layout.InstallDir);
            _fs.SyncDirectory(parent);
            _fs.SyncDirectory(_layout.StateDir);
        }

        RollBackStarted(tx);
    }

    /// <summary>Every file of the new version is in the staged tree with its declared size and hash.</summary>
    private bool StagedTreeIsComplete(TxRecord tx)
    {
        var staging = _layout.StagingDir(tx.Id);
        return _fs.Stat(staging).Kind == EntryKind.Directory && FirstMismatch(staging, ManifestCodec.Deserialize(tx.Manifest)) is null;
    }

    /// <summary>
    /// The first file or directory of <paramref name="manifest"/> that <paramref name="root"/> does not hold exactly
    /// (declared size and hash, or a directory), or null when it holds them all.
    /// </summary>
    private string? FirstMismatch(string root, Manifest manifest)
    {
        string? bad = null;
        Parallelism.ForEach(manifest.Files, CancellationToken.None, f =>
        {
            if (Volatile.Read(ref bad) is not null) return;
            if (ContentHash.Compare(_fs, PathRules.Join(root, f.Path), f.Size, f.Sha256) != FileMatch.Same) Interlocked.CompareExchange(ref bad, f.Path, null);
        });
        return bad ?? manifest.Directories.FirstOrDefault(d => _fs.Stat(PathRules.Join(root, d)).Kind != EntryKind.Directory);
    }

    /// <summary>
    /// Switches back to the version kept by <see cref="PatcherOptions.KeepPreviousVersion"/>; the current one becomes the
    /// kept one. The caller holds the lock and has recovered any pending transaction.
    /// </summary>
    public ApplyResult RollbackToKept()
    {
        var installed = _journal.Installed();
        if (installed?.PreviousManifest is null || installed.PreviousVersion is null || _fs.Stat(_layout.PreviousDir).Kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.NothingToRollBack, "no previous version is kept; apply with KeepPreviousVersion to allow rollback", _layout.InstallDir);

        var current = ManifestCodec.Deserialize(installed.Manifest);
        var previous = ManifestCodec.Deserialize(installed.PreviousManifest);
        // The kept tree lies in the state directory for as long as the player likes: it goes back only if it still is
        // exactly the version the journal says it is.
        if (FirstMismatch(_layout.PreviousDir, previous) is { } changed)
            throw new PatcherException(PatchErrorCode.VerifyFailed,
                $"the kept previous version {installed.PreviousVersion} no longer matches its manifest ('{changed}' is missing or changed); nothing was rolled back", _layout.PreviousDir);
        var tx = RollbackTx(installed);
        PendingMarker.Write(_fs, _layout, tx.Id);
        _journal.Begin(tx);
        var staging = _layout.StagingDir(tx.Id);
        _fs.Rename(_layout.PreviousDir, staging);
        _fs.SyncDirectory(_layout.StateDir);

        // The user's files go along, exactly as for a forward apply.
        var user = ApplyPlan.FindUserEntries(TreeOps.Walk(_fs, _layout.InstallDir, PathRules.IsInstallMarker), ApplyPlan.TargetPaths(current), ApplyPlan.TargetPaths(previous));
        var plan = new ApplyPlan { Manifest = previous, Files = [], UserEntries = user, OldVersionPaths = ApplyPlan.TargetPaths(current), BytesToWrite = 0 };
        new ShadowTreeBuilder(_fs, _journal, _log, new ShadowTreeRequest(tx.Id, _layout.InstallDir, staging, plan)).Build(null, CancellationToken.None);
        var identity = _fs.Stat(staging);
        _journal.MarkBackupComplete(tx.Id, identity.Device, identity.Inode);
        if (SwitchOrRollBack(tx with { StagingDevice = identity.Device, StagingInode = identity.Inode }) is { } failure)
            throw RolledBack(failure);
        _journal.MarkPatched(tx.Id, new InstalledRecord(installed.Product, installed.PreviousVersion, tx.ManifestHash, installed.PreviousManifest,
            installed.Version, installed.Manifest), InstallIdentity.Establish(_fs, _layout.InstallDir));
        Finish(tx with { State = TxState.Patched }, null);
        Trash.Empty(_fs, _layout, _log);
        _log.LogInformation("Rolled back from {From} to {To}", installed.Version, installed.PreviousVersion);
        return new ApplyResult(ApplyStatus.Applied, installed.Version, installed.PreviousVersion, tx.Id, CommitStrategy.Swap, false, 0, 0, 0);
    }

    private static TxRecord RollbackTx(InstalledRecord installed) => new()
    {
        Id = "rb-" + Guid.NewGuid().ToString("N")[..12],
        Kind = TxKind.Rollback,
        Product = installed.Product,
        FromVersion = installed.Version,
        ToVersion = installed.PreviousVersion!,
        ManifestHash = ManifestCodec.Hash(installed.PreviousManifest!),
        Manifest = installed.PreviousManifest!,
        Strategy = CommitStrategies.JournalName(CommitStrategy.Swap),
        State = TxState.Started,
        KeepPrevious = true,
    };
}
