using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// The layered commit: stage only the files that change, back up the ones they replace, then replace file by file
/// through the lock layers, journaling each (<see cref="LayeredCommit"/>). A failure after the first file changed (a
/// lock outlasting its budget, a full disk) rolls every file back before the error leaves. Keeps no previous version.
/// </summary>
internal sealed class LayeredStrategy(CommitContext context) : ICommitStrategy
{
    private readonly IFileOps _fs = context.Fs;
    private readonly StateLayout _layout = context.Layout;
    private readonly JournalStore _journal = context.Journal;
    private readonly LockRetry _retry = context.Retry;
    private readonly ILogger _log = context.Log;
    private readonly LayeredCommit _commit = new(context.Fs, context.Layout, context.Journal, context.Retry, context.Log);

    public CommitStrategy Kind => CommitStrategy.Layered;

    public bool KeepsPreviousTree(TxRecord tx) => false;

    public StagedUpdate Stage(ApplySession session)
    {
        var tx = session.Tx;
        var plan = session.Plan;
        RemoveStaleBackups(tx.Id);
        var (ops, toStage) = LayeredCommit.Plan(_fs, _layout, plan, VolumeCase.IgnoresCase(_fs, _layout.InstallDir));
        var restaged = toStage.Select(t => t.File.Path).ToHashSet(StringComparer.Ordinal);
        var stagePlan = new ApplyPlan
        {
            Manifest = plan.Manifest,
            Files = toStage,
            UserEntries = [],
            OldVersionPaths = plan.OldVersionPaths,
            BytesToWrite = toStage.Where(s => s.ReuseFrom is null).Sum(s => s.File.Size),
            StagesWholeTree = false,
        };
        session.Progress?.Report(new PatchProgress(PatchPhase.Staging, 0, toStage.Count, 0, stagePlan.BytesToWrite));
        var staging = _layout.StagingDir(tx.Id);
        var built = new ShadowTreeBuilder(_fs, _journal, _log, new ShadowTreeRequest(tx.Id, _layout.InstallDir, staging, stagePlan)
        {
            Package = session.Package,
            Received = session.Received,
            VerifiedRows = session.Resumed ? _journal.Files(tx.Id) : new Dictionary<string, FileRow>(),
            KeepUnlinked = plan.Files.Select(f => f.File.Path).Where(p => !restaged.Contains(p)),
        }).Build(session.Progress, session.Cancellation);
        session.Received.Release(_fs, _layout, tx.Id, _log);
        InstallOwner.Apply(_fs, _layout.InstallDir, staging);
        // Last point at which cancelling is honoured without touching the install.
        session.Cancellation.ThrowIfCancellationRequested();
        using (WalkedScope.Enter(plan.Walked)) _commit.PrepareBackups(tx.Id, ops);
        return new StagedUpdate(tx, built, toStage.Count, plan.Files.Count - built.Written);
    }

    public void Commit(ApplySession session, StagedUpdate staged)
    {
        var txId = staged.Tx.Id;
        session.Progress?.Report(new PatchProgress(PatchPhase.Committing, 0, staged.Changed, 0, 0));
        // Every step below the install, and their undo, must still find the directories the plan's walk found.
        using var walked = WalkedScope.Enter(session.Plan.Walked);
        try
        {
            _commit.Forward(txId, session.Progress is null ? null : new FilesPlaced(session.Progress, staged.Changed));
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            var failure = NativeErrors.FromException(ex, "commit", _layout.InstallDir);
            _log.LogError(PatcherLogEvents.CommitFailed, "Commit of {Tx} failed ({Reason}); rolling every file back", txId, failure.Message);
            try
            {
                RollBack(txId);
            }
            catch (Exception rollbackError) when (rollbackError is PatcherException || NativeErrors.IsEnvironmentFailure(rollbackError))
            {
                var rollbackFailure = NativeErrors.FromException(rollbackError, "roll back", _layout.InstallDir);
                throw new PatcherException(rollbackFailure.Code,
                    $"{failure.Message}; rolling back then failed too ({rollbackFailure.Message}). The install may be a mix of versions until Patcher.Recover completes; run it once the cause above is gone",
                    rollbackFailure.Path ?? failure.Path, ex) { NativeError = rollbackFailure.NativeError };
            }

            throw new PatcherException(failure.Code, failure.Message + ". The update was rolled back: the old version is intact", failure.Path, ex) { NativeError = failure.NativeError };
        }
    }

    public void ReportInstalled(ApplySession session, StagedUpdate staged)
    {
        var manifest = session.Package.Manifest;
        if (staged.Tx.KeepPrevious)
            _log.LogWarning("KeepPreviousVersion is not supported by the layered strategy: only the replaced files were backed up, and they are removed");
        session.Progress?.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));
        _log.LogInformation(PatcherLogEvents.Installed, "Installed {Product} {Version} (transaction {Tx}, layered, {Changed} files changed)", manifest.Product, manifest.Version, staged.Tx.Id, staged.Changed);
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
    private void RemoveStaleBackups(string txId)
    {
        foreach (var name in _fs.ListNames(_layout.StateDir).Where(n => (n.StartsWith("backup-", StringComparison.Ordinal) || n.StartsWith("staging-", StringComparison.Ordinal))
                     && n != "backup-" + txId && n != "staging-" + txId).ToList())
        {
            try
            {
                TreeOps.DeleteTree(_fs, Path.Join(_layout.StateDir, name));
            }
            catch (PatcherException ex)
            {
                _log.LogWarning("Stale backup area {Name} is still in use ({Reason}); left for later", name, ex.Message);
            }
        }
    }

    /// <summary>Before the first install file changed: drop staging and backups.</summary>
    public void RollBackStarted(TxRecord tx)
    {
        _commit.DeleteLeftovers(tx.Id);
        _journal.SetState(tx.Id, TxState.RolledBack);
        PendingMarker.Remove(_fs, _layout);
        _log.LogInformation("Transaction {Tx} rolled back; the old version is intact", tx.Id);
    }

    /// <summary>After files may have changed: journal rolling-back first (so recovery keeps undoing), then undo every step.</summary>
    private void RollBack(string txId)
    {
        _journal.SetState(txId, TxState.RollingBack);
        _commit.RollBack(txId);
        _commit.DeleteLeftovers(txId);
        _journal.SetState(txId, TxState.RolledBack);
        PendingMarker.Remove(_fs, _layout);
        _log.LogInformation("Transaction {Tx} rolled back file by file; the old version is intact", txId);
    }

    /// <summary>After patched: preserve displaced user entries, remove backups and staging, mark done; returns the entries left (see <see cref="LayeredCommit.Finish"/>).</summary>
    public IReadOnlyList<string> Finish(TxRecord tx, ApplyPlan? plan)
    {
        var left = _commit.Finish(tx.Id);
        // A tree an earlier swap kept (KeepPreviousVersion) is no longer the version before this one: the installed row
        // now names this update's base as the previous version, and the layered strategy keeps no old tree. Left in
        // place, a rollback would put that older tree back under the wrong version number.
        if (Trash.TakeKeptPrevious(_fs, _layout, tx.Id))
        {
            _fs.SyncDirectory(_layout.StateDir);
            Trash.Sync(_fs, _layout);
        }

        _journal.SetState(tx.Id, TxState.Done);
        PendingMarker.Remove(_fs, _layout);
        return left;
    }

    /// <summary>
    /// Started means the install was not touched (backups are links or copies), so staging and backups go;
    /// backup-complete rolls forward when every remaining staged file verifies, back otherwise (and back when a file
    /// stays locked); rolling-back finishes undoing; patched finishes cleaning up.
    /// </summary>
    public bool Recover(TxRecord tx)
    {
        switch (tx.State)
        {
            case TxState.Started:
                RollBackStarted(tx);
                return false;

            case TxState.BackupComplete:
                return RollForward(tx) && CommitStrategies.RecordRolledForward(this, context, tx);

            case TxState.RollingBack:
                RollBack(tx.Id);
                return false;

            case TxState.Patched:
                Finish(tx, null);
                return true;

            default:
                return false;
        }
    }

    /// <summary>Places every remaining file of a backup-complete transaction; false when it was rolled back instead.</summary>
    private bool RollForward(TxRecord tx)
    {
        if (!_commit.CanRollForward(tx.Id, ManifestCodec.Deserialize(tx.Manifest)))
        {
            _log.LogWarning("Staged files of {Tx} do not verify; rolling every file back", tx.Id);
            RollBack(tx.Id);
            return false;
        }

        try
        {
            _commit.Forward(tx.Id);
            return true;
        }
        catch (PatcherException ex) when (_retry.IsLock(ex) || ex.Code is PatchErrorCode.DiskFull or PatchErrorCode.AccessDenied)
        {
            _log.LogWarning("Cannot finish {Tx} ({Reason}); rolling every file back", tx.Id, ex.Message);
            RollBack(tx.Id);
            return false;
        }
    }

    public void RollBackUnverified(TxRecord tx) => RollBack(tx.Id);
}
