using System.Globalization;
using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Progress;
using Patching.Signing;
using Patching.Sources;
using Patching.Staging;
using Patching.State;

namespace Patching.Transaction;

/// <summary>A package whose signature was checked, with the ids of the keys that verified it (the transaction records them).</summary>
internal sealed record VerifiedPatch(PatchPackage Package, IReadOnlyList<string> KeyIds);

/// <summary>
/// The apply pipeline, one ordered run of steps: preflight (nothing on disk changes) → session (lock, journal,
/// recovery of an interrupted transaction, plan) → receive (every blob read and verified once, before the
/// transaction's first row) → stage → commit → finish, the last three run by the commit strategy
/// (<see cref="ICommitStrategy"/>). Every step that changes the disk is preceded by the durable journal row that allows
/// it. The folder keeps the name of what it drives: one transaction.
/// </summary>
internal static partial class ApplyPipeline
{
    /// <summary>The Verifying phase's steps: read the manifest, check its signature, check the install against it.</summary>
    public const int VerifySteps = 3;

    /// <summary>Checks the package's signature, then applies it.</summary>
    public static ApplyResult Apply(EngineSettings engine, string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        // Verifying counts its steps: the manifest, its signature, then the install's files (ApplyVerified).
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 0, VerifySteps, 0, 0) { CurrentItem = ManifestCodec.ManifestFileName });

        // ---- Preflight on the patch alone: nothing on disk is touched until it passes. ----
        StatePlacement.RequireInstallDirectory(engine.FileSystem, Path.TrimEndingDirectorySeparator(installDir));
        var package = PatchPackage.Open(patchDir, options.Limits, () => StatePlacement.InstalledManifest(engine, installDir, options));
        if (options.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to apply an unverifiable patch", patchDir);
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 1, VerifySteps, 0, 0) { CurrentItem = ManifestCodec.SignatureFileName });
        IReadOnlyList<string> keyIds;
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            keyIds = package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        return ApplyVerified(engine, installDir, new VerifiedPatch(package, keyIds), options, progress, ct);
    }

    /// <summary>
    /// Everything after the signature check. Only for callers that have verified the package themselves (with the key
    /// ids that verified it, which the transaction row records).
    /// </summary>
    public static ApplyResult ApplyVerified(EngineSettings engine, string installDir, VerifiedPatch patch, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var fs = engine.FileSystem;
        progress = ProgressTracker.Wrap(progress, options.TimeProvider);
        var layout = StatePlacement.Resolve(engine, installDir, options);
        StatePlacement.RequireInstallDirectory(fs, layout.InstallDir);
        var manifest = patch.Package.Manifest;
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 2, VerifySteps, 0, 0) { CurrentItem = "install files" });
        options.Logger.LogInformation(PatcherLogEvents.PatchVerified, "Patch {Product} {From} -> {To} verified (keys {Keys})", manifest.Product, manifest.FromVersion ?? "(full)", manifest.Version, string.Join(",", patch.KeyIds));

        var (strategy, stateInside) = StatePlacement.ChooseStrategy(fs, layout, options);
        strategy = StatePlacement.CheckRunningPrograms(layout, options, strategy, progress, ct);
        if (stateInside) layout = StatePlacement.Inside(engine, layout.InstallDir);
        using var session = new ApplySession(fs, patch.Package, patch.KeyIds, options)
        {
            Layout = layout, Strategy = strategy, Progress = progress, Cancellation = ct,
        };
        var state = OpenState(session, engine);
        if (state is null) return Busy(session.Strategy);
        var txId = Receive(session, state, engine.ProgressRecordBytes);
        try
        {
            return Transact(session, txId);
        }
        catch (Exception ex) when (ex is PatcherException or OperationCanceledException)
        {
            // Whatever reached the trash (the received blobs, an old tree) is garbage whichever way this ended.
            Trash.Empty(fs, session.Layout, session.Log);
            throw;
        }
    }

    /// <summary>
    /// Every blob is read, hashed and written once, before the transaction's first journal row: a corrupt or hostile
    /// blob is refused with nothing to undo but what was received, the marker (and a state directory made just now).
    /// The marker comes first, so that a crash while receiving is cleaned up by Recover. Large contents are rebuilt
    /// resumably (<see cref="ContentCheckpoints"/>, a record every <paramref name="recordBytes"/>), and a resumed
    /// transaction receives nothing for the files its earlier attempt staged. Returns the transaction's id.
    /// </summary>
    private static string Receive(ApplySession session, OpenedState state, long recordBytes)
    {
        var (fs, layout, plan) = (session.Fs, session.Layout, session.Plan);
        var txId = session.Resumable?.Id ?? NewTxId(session.Options.TimeProvider);
        if (!session.Resumed) PendingMarker.Write(fs, layout, txId);
        try
        {
            var manifest = session.Package.Manifest;
            session.Progress?.Report(new PatchProgress(PatchPhase.Staging, 0, manifest.Blobs.Count + manifest.Recipes.Count, 0, plan.BytesToWrite));
            var journal = session.OpenJournal;
            session.Received = new BlobReceiver(fs, session.Log, session.Package, layout.IncomingDir)
            {
                Checkpoints = new ContentCheckpoints(fs, journal, session.Log, session.Package.ManifestHash, layout.PartialDir, recordBytes),
                AlreadyStaged = session.Resumable is { } resumable
                    ? ShadowTreeBuilder.KeptFromEarlierAttempt(fs, layout.StagingDir(resumable.Id), plan, journal.Files(resumable.Id))
                    : new HashSet<string>(),
            }.Receive(plan, session.Options.LinkPatchBlobs, session.Progress, session.Cancellation);
            return txId;
        }
        catch (Exception ex) when (ex is OperationCanceledException or PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            session.Log.LogWarning(PatcherLogEvents.StagingFailed, "Receiving the patch's blobs failed ({Reason}); nothing was changed", ex.Message);
            RemoveReceived(session, state, keepRebuilt: ex is OperationCanceledException);
            if (ex is OperationCanceledException)
                throw Cancelled(ex);
            throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "receive the patch into", layout.IncomingDir);
        }
    }

    /// <summary>
    /// After a failed receive: what was received, the marker, and a state directory this apply made and nobody used. What
    /// was rebuilt (and its progress records) goes too, unless <paramref name="keepRebuilt"/>: a cancelled apply (a
    /// launcher's pause) keeps the recorded prefixes for the next apply of the same patch. A refused patch's go (its
    /// data was hostile or damaged), and so do those of a full disk or an I/O error: the space is what the player must
    /// get back, and the next apply's free-space check counts every byte it writes, kept prefix or not.
    /// </summary>
    private static void RemoveReceived(ApplySession session, OpenedState state, bool keepRebuilt)
    {
        var (fs, layout) = (session.Fs, session.Layout);
        try
        {
            TreeOps.DeleteTree(fs, layout.IncomingDir);
            if (keepRebuilt && session.Journal is { } open) ReceiveLeftovers.KeepRecordedPartials(fs, layout, open);
            else
            {
                // The files first: on a full disk that frees what the journal's delete needs. Either half left behind
                // is harmless: a record without its file makes the next receive rebuild that content from its start.
                TreeOps.DeleteTree(fs, layout.PartialDir);
                session.Journal?.ForgetProgress();
            }

            if (!session.Resumed) PendingMarker.Remove(fs, layout);
            // The state directory goes too if this apply made it and nobody else has used it since: another
            // applier may have created it between our check and our mkdir, installed, and released the lock. Kept
            // rebuilt contents keep it.
            if (state.Created && session.Journal is { } journal && !journal.HasHistory() && !ReceiveLeftovers.AnyPartialKept(fs, layout))
            {
                journal.Dispose();
                session.Journal = null;
                var txLock = session.Lock;
                session.Lock = null;
                StatePlacement.RemoveStateDirectory(fs, layout, txLock, state.MadeParents);
            }
        }
        catch (Exception cleanup) when (cleanup is PatcherException || NativeErrors.IsEnvironmentFailure(cleanup))
        {
            // The launcher needs the refusal's reason, not the follow-on failure.
            session.Log.LogWarning("Could not remove what was received for the refused patch ({Reason}); the next apply does", cleanup.Message);
        }
    }

    /// <summary>The transaction: its row, then stage, commit and finish by the chosen strategy.</summary>
    private static ApplyResult Transact(ApplySession session, string txId)
    {
        var strategy = CommitStrategies.Create(session.Strategy, session.Context);
        var manifest = session.Package.Manifest;
        session.Tx = BeginOrResume(session, txId);
        var installedAfter = InstalledAfter(session, strategy.KeepsPreviousTree(session.Tx));
        var staged = Stage(session, strategy);
        strategy.Commit(session, staged);
        IReadOnlyList<string> left;
        try
        {
            session.OpenJournal.MarkPatched(session.Tx.Id, installedAfter.GetAwaiter().GetResult(), InstallIdentity.Establish(session.Fs, session.Layout.InstallDir));
            session.Progress?.Report(new PatchProgress(PatchPhase.CleaningUp, 0, 1, 0, 0));
            left = strategy.Finish(session.Tx with { State = TxState.Patched }, session.Plan);
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            throw NewVersionInPlace(ex, session.Layout, manifest.Version);
        }

        strategy.ReportInstalled(session, staged);
        return new ApplyResult(ApplyStatus.Applied, session.Installed?.Version ?? manifest.FromVersion, manifest.Version, session.Tx.Id, strategy.Kind,
            session.Resumed, staged.Built.Written, staged.FilesReused, session.Received.BytesWritten + staged.Built.BytesWritten)
        {
            Cleanup = Trash.EmptyAfterwards(session.Fs, session.Layout, session.Options), EntriesLeftBehind = left,
        };
    }

    /// <summary>
    /// Staging by the strategy, with the one handler for its failure: the install was never touched, so the transaction
    /// is rolled back and what was received goes to the trash before the error leaves.
    /// </summary>
    private static StagedUpdate Stage(ApplySession session, ICommitStrategy strategy)
    {
        var tx = session.Tx;
        try
        {
            return strategy.Stage(session);
        }
        catch (Exception ex) when (ex is OperationCanceledException or PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            session.Log.LogWarning(PatcherLogEvents.StagingFailed, "Staging of {Tx} failed ({Reason}); rolling back", tx.Id, ex.Message);
            try
            {
                strategy.RollBackStarted(tx);
            }
            catch (Exception rollbackFailure) when (rollbackFailure is PatcherException || NativeErrors.IsEnvironmentFailure(rollbackFailure))
            {
                // The install was never touched; the transaction stays pending and the next Recover or Apply
                // finishes the rollback. The launcher needs the original cause, not the follow-on failure.
                session.Log.LogWarning("Rolling back {Tx} failed too ({Reason}); recovery will finish it", tx.Id, rollbackFailure.Message);
            }

            ReleaseReceivedAfterRollback(session, keepRebuilt: ex is OperationCanceledException);
            if (ex is OperationCanceledException)
                throw Cancelled(ex);
            throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "stage", session.Layout.StagingDir(tx.Id));
        }
    }

    /// <summary>
    /// After staging failed and was rolled back: what was received goes to the trash (emptied when the error leaves), so
    /// nothing of the update is left behind, except, when the apply was cancelled (<paramref name="keepRebuilt"/>), the
    /// rebuilt contents and their progress records, which the next apply of the same patch continues
    /// (<see cref="RemoveReceived"/>). Best effort: the next Apply or Recover removes it otherwise, and the launcher needs
    /// the staging failure's reason, not this one.
    /// </summary>
    private static void ReleaseReceivedAfterRollback(ApplySession session, bool keepRebuilt)
    {
        try
        {
            if (keepRebuilt) TreeOps.DeleteTree(session.Fs, session.Layout.IncomingDir);
            else session.Received.Release(session.Fs, session.Layout, session.Tx.Id, session.Log);
        }
        catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
        {
            session.Log.LogWarning("Could not move the blobs received for {Tx} to the trash ({Reason}); the next Apply or Recover removes them", session.Tx.Id, ex.Message);
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
    /// What the journal will say is installed once the commit is done, computed while staging waits on the disk rather
    /// than between the commit and the <c>patched</c> row. Pure computation, no file-system access.
    /// </summary>
    private static Task<InstalledRecord> InstalledAfter(ApplySession session, bool keepsPreviousTree)
    {
        var (package, installed) = (session.Package, session.Installed);
        return Task.Run(() => InstalledRecord.After(package.Manifest, package.ManifestBytes, package.ManifestHash, installed, keepsPreviousTree));
    }

    /// <summary>
    /// The <c>started</c> row of a new transaction, or the interrupted one being resumed. (The pending marker was
    /// written before the blobs were received: recovery already looks at the journal.)
    /// </summary>
    private static TxRecord BeginOrResume(ApplySession session, string txId)
    {
        if (session.Resumable is { } resumable)
        {
            session.Log.LogInformation(PatcherLogEvents.StagingResumed, "Resuming interrupted staging of transaction {Tx}", resumable.Id);
            return resumable;
        }

        var package = session.Package;
        var tx = new TxRecord
        {
            Id = txId,
            Kind = TxKind.Apply,
            Product = package.Manifest.Product,
            FromVersion = session.Installed?.Version ?? package.Manifest.FromVersion,
            ToVersion = package.Manifest.Version,
            ManifestHash = package.ManifestHash,
            Manifest = package.ManifestBytes,
            Signature = package.Envelope is null ? null : System.Text.Encoding.UTF8.GetString(ManifestCodec.SerializeEnvelope(package.Envelope)),
            KeyIds = string.Join(",", session.KeyIds),
            Strategy = CommitStrategies.JournalName(session.Strategy),
            State = TxState.Started,
            KeepPrevious = session.Options.KeepPreviousVersion,
        };
        session.OpenJournal.Begin(tx);
        return tx;
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
