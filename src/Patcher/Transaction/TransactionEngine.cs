using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Progress;
using Patching.Recovery;
using Patching.State;

namespace Patching.Transaction;

/// <summary>
/// The engine's entry points behind <see cref="Patcher"/>: apply (<see cref="ApplyPipeline"/>), recover, status,
/// verify and rollback, each against the real file system or the one <see cref="EngineSettings"/> names.
/// </summary>
internal static class TransactionEngine
{
    /// <summary>The real file system, wrapped for crash injection when the test hook is armed.</summary>
    internal static EngineSettings Default => new(CrashInjection.Enabled ? new CrashingFileOps(FileOps.Instance) : FileOps.Instance);

    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        Apply(Default, installDir, patchDir, options, progress, ct);

    public static ApplyResult Apply(EngineSettings engine, string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        NativeErrors.Guard("apply", installDir, () => ApplyPipeline.Apply(engine, installDir, patchDir, options, ProgressTracker.Wrap(progress, options.TimeProvider), ct));

    /// <summary>Applies a package the caller has verified itself (<see cref="ApplyPipeline.ApplyVerified"/>).</summary>
    internal static ApplyResult ApplyVerified(EngineSettings engine, string installDir, VerifiedPatch patch, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        ApplyPipeline.ApplyVerified(engine, installDir, patch, options, progress, ct);

    public static RecoveryResult Recover(string installDir, PatcherOptions options) => Recover(Default, installDir, options);

    public static RecoveryResult Recover(EngineSettings engine, string installDir, PatcherOptions options) =>
        NativeErrors.Guard("recover", installDir, () => RecoverCore(engine, installDir, options));

    private static RecoveryResult RecoverCore(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var fs = engine.FileSystem;
        var layout = StatePlacement.Resolve(engine, installDir, options);
        // The cheap path every app start takes: four existence checks (state inside the install, the marker, an old
        // tree a running program kept, the trash a launcher may have left when it exited before its background cleanup
        // finished).
        if (!PendingMarker.Exists(fs, layout))
        {
            if (fs.Stat(layout.InUseDir).Kind == EntryKind.Directory) return SweepTreesInUse(fs, layout, options);
            // Left-over old files are deleted off the app's start-up path (a large trash takes seconds to delete).
            if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) return new RecoveryResult(RecoveryOutcome.NothingPending, null, null);
            StateTrust.Require(fs, layout);
            return new RecoveryResult(RecoveryOutcome.NothingPending, null, null) { Cleanup = Trash.EmptyAfterwards(fs, layout, options) };
        }

        return RecoverPending(fs, layout, options);
    }

    /// <summary>
    /// The part of <see cref="RecoverCore"/> that runs only when the marker exists. A method of its own, never
    /// inlined, so that compiling the cheap path does not load the lock and journal (SQLite) types.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static RecoveryResult RecoverPending(IFileOps fs, StateLayout layout, PatcherOptions options) =>
        UnderLock(fs, layout, options, transactionPending: true, context =>
        {
            // Blobs received for the interrupted transaction are never used again; gone before the marker can go.
            ReceiveLeftovers.DeleteIncoming(fs, layout);
            var journal = context.Journal;
            var pending = journal.Pending();
            var outcome = RecoveryOutcome.NothingPending;
            if (pending is not null)
            {
                var forward = Recoverer.Recover(context, pending, RollForwardTrust.From(options));
                outcome = forward ? RecoveryOutcome.RolledForward : RecoveryOutcome.RolledBack;
            }
            else
            {
                Recoverer.ResolveWithoutJournalRow(fs, layout, options.Logger);
            }

            new SwapStrategy(context).SweepTreesInUse();

            // A cleanup interrupted after the done row (the marker could not be removed) left its trash too.
            Trash.Empty(fs, layout, options.Logger);
            // Contents partly rebuilt by the interrupted apply stay for the launcher's next apply of the same patch, which
            // continues them after their recorded prefixes; the rest (a committed patch's, whose records went with its
            // patched row) goes.
            ReceiveLeftovers.KeepRecordedPartials(fs, layout, journal);
            var version = journal.Installed()?.Version;
            options.Logger.LogInformation(PatcherLogEvents.RecoveryOutcome, "Recovery of {Install}: {Outcome} (transaction {Tx}); installed version {Version}",
                layout.InstallDir, outcome, pending?.Id ?? "none", version ?? "unknown");
            return new RecoveryResult(outcome, pending?.Id, version);
        });

    /// <summary>
    /// Nothing pending, but an old tree a running program used is kept: under the lock, what was written there since
    /// goes into the install, and a tree nobody uses any more goes to the trash (deleted in the background, after the
    /// lock is released).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static RecoveryResult SweepTreesInUse(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        var swept = UnderLock(fs, layout, options, transactionPending: false, context =>
        {
            new SwapStrategy(context).SweepTreesInUse();
            return new RecoveryResult(RecoveryOutcome.NothingPending, null, null);
        });
        if (swept.Outcome == RecoveryOutcome.Busy) return swept;
        var cleanup = fs.Stat(layout.TrashDir).Kind == EntryKind.Missing ? Task.CompletedTask : Trash.EmptyAfterwards(fs, layout, options);
        return swept with { Cleanup = cleanup };
    }

    /// <summary>
    /// Runs <paramref name="recover"/> with the state trusted, the lock held and the journal open (the recoveries of
    /// <see cref="Recover(EngineSettings, string, PatcherOptions)"/>); Busy, with nothing done, when another process holds the lock.
    /// </summary>
    private static RecoveryResult UnderLock(IFileOps fs, StateLayout layout, PatcherOptions options, bool transactionPending, Func<CommitContext, RecoveryResult> recover)
    {
        StateTrust.Require(fs, layout);
        using var txLock = TransactionLock.TryAcquire(layout.LockPath);
        if (txLock is null) return new RecoveryResult(RecoveryOutcome.Busy, null, null);
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, transactionPending, options.Logger, options.TimeProvider);
        return recover(new CommitContext(fs, layout, journal, LockRetry.For(fs, options, layout.InstallDir), options.Logger));
    }

    public static InstallStatus Status(string installDir, PatcherOptions options) => Status(Default, installDir, options);

    public static InstallStatus Status(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var layout = StatePlacement.Resolve(engine, installDir, options);
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
        return new InstallStatus(installed?.Product, installed?.Version, pending?.Id, pending?.State.ToPendingPhase(), previous) { UpdateInProgress = running };
    }

    public static VerifyReport Verify(string installDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        InstallVerifier.Verify(Default, installDir, options, progress, ct);

    public static ApplyResult Rollback(string installDir, PatcherOptions options) =>
        Rollback(Default.FileSystem, StatePlacement.Resolve(Default, installDir, options), options);

    /// <summary>
    /// Switches back to the version kept by <see cref="PatcherOptions.KeepPreviousVersion"/>, under the lock and after
    /// any pending transaction was recovered. Only the swap keeps a previous version (<see cref="SwapStrategy.RollbackToKept"/>).
    /// </summary>
    internal static ApplyResult Rollback(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        var log = options.Logger;
        if (fs.Stat(layout.StateDir).Kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.NothingToRollBack, "no previous version is kept (nothing was installed by Patcher here)", layout.InstallDir);
        StateTrust.Require(fs, layout);
        using var txLock = TransactionLock.TryAcquire(layout.LockPath);
        if (txLock is null) return new ApplyResult(ApplyStatus.Busy, null, null, null, CommitStrategy.Swap, false, 0, 0, 0);
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, PendingMarker.Exists(fs, layout), log, options.TimeProvider);
        var context = new CommitContext(fs, layout, journal, Recoverer.DefaultRetry(fs, layout, log), log);
        _ = Recoverer.RecoverPending(context, RollForwardTrust.From(options), resume: null);
        return new SwapStrategy(context).RollbackToKept();
    }
}
