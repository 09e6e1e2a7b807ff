using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// The swap: the complete new version is staged as a shadow tree beside the install and exchanged with it in one step
/// (<see cref="SwapCommit"/>). Before the exchange the install is untouched, so rolling back deletes the shadow tree;
/// after it, the old tree is what the user's late files are swept from, then it is kept as the previous version or
/// trashed. The only strategy that keeps a previous version, so <see cref="RollbackToKept"/> lives here.
/// </summary>
internal sealed partial class SwapStrategy(CommitContext context) : ICommitStrategy
{
    private readonly IFileOps _fs = context.Fs;
    private readonly StateLayout _layout = context.Layout;
    private readonly JournalStore _journal = context.Journal;
    private readonly ILogger _log = context.Log;

    public CommitStrategy Kind => CommitStrategy.Swap;

    public bool KeepsPreviousTree(TxRecord tx) => tx.KeepPrevious;

    public StagedUpdate Stage(ApplySession session)
    {
        var tx = session.Tx;
        var plan = session.Plan;
        var staging = _layout.StagingDir(tx.Id);
        session.Progress?.Report(new PatchProgress(PatchPhase.Staging, 0, plan.Files.Count, session.Received.BytesWritten, plan.BytesToWrite));
        var built = new ShadowTreeBuilder(_fs, _journal, _log, new ShadowTreeRequest(tx.Id, _layout.InstallDir, staging, plan)
        {
            Package = session.Package,
            Received = session.Received,
            VerifiedRows = session.Resumed ? _journal.Files(tx.Id) : new Dictionary<string, FileRow>(),
        }).Build(session.Progress, session.Cancellation);
        session.Received.Release(_fs, _layout, tx.Id, _log);
        InstallOwner.Apply(_fs, _layout.InstallDir, staging);
        var identity = _fs.Stat(staging);
        _journal.MarkBackupComplete(tx.Id, identity.Device, identity.Inode);
        // Last point at which cancelling is honoured: after this the switch is one step.
        session.Cancellation.ThrowIfCancellationRequested();
        return new StagedUpdate(tx with { StagingDevice = identity.Device, StagingInode = identity.Inode }, built, plan.Files.Count, built.Reused);
    }

    public void Commit(ApplySession session, StagedUpdate staged)
    {
        session.Progress?.Report(new PatchProgress(PatchPhase.Committing, 0, 1, 0, 0));
        if (SwitchOrRollBack(staged.Tx) is { } failure)
            throw RolledBack(failure);
    }

    public void ReportInstalled(ApplySession session, StagedUpdate staged)
    {
        var manifest = session.Package.Manifest;
        session.Progress?.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));
        _log.LogInformation(PatcherLogEvents.Installed, "Installed {Product} {Version} (transaction {Tx})", manifest.Product, manifest.Version, staged.Tx.Id);
    }

    /// <summary>
    /// Runs the switch. When it fails and the install was not touched (no exchange, and the two-rename fallback
    /// did not start), the transaction is rolled back and the failure returned: a switch that can never succeed
    /// here (EXDEV, EBUSY on a mount point, EACCES) must not be retried, with a full re-hash of the staged tree,
    /// on every start. A failure half-way through the two renames is rethrown: recovery finishes it forward.
    /// </summary>
    private PatcherException? SwitchOrRollBack(TxRecord tx)
    {
        try
        {
            new SwapCommit(_fs, _layout, _log).Switch(tx.Id);
            return null;
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            var install = _fs.Stat(_layout.InstallDir);
            if (install.Kind != EntryKind.Directory || Exchanged(install, tx) || _fs.Stat(_layout.OldDir(tx.Id)).Kind != EntryKind.Missing) throw;
            var failure = NativeErrors.FromException(ex, "switch to the new version", _layout.InstallDir);
            _log.LogWarning("Switching {Install} to the staged tree of {Tx} failed ({Reason}); rolling back", _layout.InstallDir, tx.Id, failure.Message);
            RollBackStarted(tx);
            return failure;
        }
    }

    /// <summary>Whether the install path holds the staged tree of <paramref name="tx"/> (the exchange happened).</summary>
    private static bool Exchanged(EntryInfo install, TxRecord tx) =>
        install.Inode != 0 && install.Inode == tx.StagingInode && install.Device == tx.StagingDevice;

    /// <summary>The error a caller sees when the switch failed and the transaction was rolled back.</summary>
    private static PatcherException RolledBack(PatcherException failure) =>
        new(failure.Code, failure.Message + "; the update was rolled back: the previous state is intact", failure.Path, failure) { NativeError = failure.NativeError };

    public void RollBackStarted(TxRecord tx)
    {
        var staging = _layout.StagingDir(tx.Id);
        if (tx.Kind == TxKind.Rollback)
        {
            // The staging directory is the kept previous version: put it back rather than delete it.
            if (_fs.Stat(staging).Kind == EntryKind.Directory && _fs.Stat(_layout.PreviousDir).Kind == EntryKind.Missing)
            {
                _fs.Rename(staging, _layout.PreviousDir);
                _fs.SyncDirectory(_layout.StateDir);
            }
        }
        else
        {
            TreeOps.DeleteTree(_fs, staging);
        }

        _journal.SetState(tx.Id, TxState.RolledBack);
        PendingMarker.Remove(_fs, _layout);
        _log.LogInformation("Transaction {Tx} rolled back; the old version is intact", tx.Id);
    }

    /// <summary>
    /// After the switch: carry over user files, keep the old tree as the previous version or move it to the trash,
    /// mark done. Deleting the trash is the caller's: the new version is complete and durable before, so the slow part
    /// (an unlink per old file) need not delay the launcher. <paramref name="plan"/> is the apply's own plan, when the
    /// caller has it: its manifest and old-version paths are what this would otherwise parse again from the journal.
    /// The entries returned stay in the old tree, which is then kept as <see cref="StateLayout.UnsweptDir"/>. An old tree
    /// a process still uses is kept in <see cref="StateLayout.InUseDir"/> instead of the trash (see <see cref="SweepTreesInUse"/>).
    /// </summary>
    public IReadOnlyList<string> Finish(TxRecord tx, ApplyPlan? plan)
    {
        IReadOnlyList<string> left = [];
        var manifest = plan?.Manifest ?? ManifestCodec.Deserialize(tx.Manifest);
        var swap = new SwapCommit(_fs, _layout, _log);
        var oldTree = swap.OldTree(tx.Id);
        if (oldTree is not null)
        {
            // Asked before the sweep: a program that used the old tree at the exchange and exits during the sweep may
            // have written a save there after the sweep passed it.
            var users = RunningPrograms.Using(oldTree);
            var ignoreCase = NamesIgnoreCase();
            var oldPaths = AsTheVolumeCompares(plan?.OldVersionPaths ?? OldVersionPaths(manifest), ignoreCase);
            var newPaths = AsTheVolumeCompares(ApplyPlan.TargetPaths(manifest), ignoreCase);
            left = swap.SweepUserFiles(tx.Id, oldTree, oldPaths, newPaths);
            // Renames only, within the state directory: fsyncs of it and of the trash make them durable. A crash in
            // between reruns this with less to do (the old tree stays at its staging/old path until it moved).
            Trash.TakeKeptPrevious(_fs, _layout, tx.Id);
            if (left.Count > 0)
            {
                _fs.Rename(oldTree, _layout.UnsweptDir(tx.Id));
                _log.LogWarning("{Count} of the player's entries could not be moved into the new version; they are kept with the old version's files in {Kept}",
                    left.Count, _layout.UnsweptDir(tx.Id));
            }
            else if (tx.KeepPrevious) _fs.Rename(oldTree, _layout.PreviousDir);
            else if (users.Count > 0) KeepInUse(tx.Id, oldTree, oldPaths, users);
            else Trash.Move(_fs, _layout, oldTree, tx.Id);
            _fs.SyncDirectory(_layout.StateDir);
            if (_fs.Stat(_layout.TrashDir).Kind == EntryKind.Directory) Trash.Sync(_fs, _layout);
        }

        _journal.SetState(tx.Id, TxState.Done);
        PendingMarker.Remove(_fs, _layout);
        return left;
    }

    /// <summary>Whether the install's volume compares names without case (<see cref="VolumeCase"/>), whatever the operating system.</summary>
    private bool NamesIgnoreCase() => VolumeCase.IgnoresCase(_fs, _layout.InstallDir);

    /// <summary>
    /// A version's paths compared as the install's volume compares names. Where it ignores case, a player's file named like
    /// a version's file but for case is one entry with it: compared ignoring case, it is kept aside instead of replacing
    /// the new version's file, and an old version's file spelt otherwise on disk is still recognised as the version's.
    /// </summary>
    private static IReadOnlySet<string> AsTheVolumeCompares(IReadOnlySet<string> paths, bool ignoreCase) =>
        ignoreCase ? paths.ToHashSet(StringComparer.OrdinalIgnoreCase) : paths;

    /// <summary>What the old version owned, from the journal: the patch's base, plus the version installed before.</summary>
    private HashSet<string> OldVersionPaths(Manifest manifest)
    {
        var paths = new HashSet<string>(manifest.Base.Select(b => b.Path).Concat(manifest.BaseDirectories), StringComparer.Ordinal);
        if (_journal.Installed()?.PreviousManifest is { } prev)
            paths.UnionWith(ApplyPlan.TargetPaths(ManifestCodec.Deserialize(prev)));
        return paths;
    }
}
