using Patching.IO;
using Patching.Tests.Commit;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Deltas;

/// <summary>
/// A large content's recorded progress survives what a launcher does between two applies of the same patch: the
/// start-up <see cref="Patcher.Recover"/> after a crash, and a pause (a cancelled apply). A full disk gives it up.
/// </summary>
public sealed partial class ContentResumeTests
{
    private static string StateOf(string install) => Path.Join(Path.GetDirectoryName(install)!, ".game.patcher");

    private static string JournalOf(string install) => Path.Join(StateOf(install), "journal.db");

    /// <summary>Runs an apply that <paramref name="fs"/> cancels; checks it left the old version and nothing received. Returns the progress records left.</summary>
    private static Dictionary<string, int> ApplyCancelled(PatchScenario s, string install, IFileOps fs, CommitStrategy strategy, CancellationToken ct)
    {
        Assert.Catch<OperationCanceledException>(() =>
            TransactionEngine.Apply(new EngineSettings(fs) { ProgressRecordBytes = RecordBytes }, install, s.PatchDir, s.Options with { Strategy = strategy }, null, ct));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(PatchScenario.Listing(s.OldTree)), "a cancelled apply leaves the old version");
        Assert.That(Directory.EnumerateFileSystemEntries(StateOf(install)).Select(Path.GetFileName), Has.No.Member("incoming").And.No.Member("pending")
            .And.None.StartsWith("staging-"));
        return RawJournal.ProgressRecords(JournalOf(install));
    }

    /// <summary>The launcher's next apply: the new version exactly, a recorded prefix continued, only <paramref name="opsExpected"/> operations run.</summary>
    private static void NextApplyContinues(PatchScenario s, string install, CommitStrategy strategy, int opsExpected)
    {
        var (result, opsRun, applyLog) = ApplyHere(s, install, strategy);
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(applyLog.Ids, Has.Member(PatcherLogEvents.ContentResumed.Id));
        Assert.That(opsRun, Is.EqualTo(opsExpected), "only the operations after the recorded prefix run");
        Assert.That(Directory.Exists(Path.Join(StateOf(install), "partial")), Is.False, "the installed patch's partial contents are gone");
        Assert.That(RawJournal.ProgressRecords(JournalOf(install)), Is.Empty);
    }

    /// <summary>
    /// Killed while receiving (after the third progress record) or while staging (after the transaction's first row, the
    /// content complete and recorded), then the app's start-up Recover, then the launcher's apply: the recorded
    /// operations are not run again.
    /// </summary>
    [TestCase("receiving", TestName = "Recover_AfterAKillWhileReceivingALargeDeltaFile_NextApplyRunsOnlyTheOperationsAfterTheRecordedPrefix")]
    [TestCase("staging", TestName = "Recover_AfterAKillWhileStagingALargeDeltaFile_NextApplyRebuildsNothing")]
    public void Recover_AfterAKillInsideALargeDeltaFile_NextApplyContinuesTheRecordedPrefix(string when)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host's kill points are counted on Linux");
        var (s, recipe, trust) = LargeDeltaGame("resume-recover-" + when);
        using var _ = s;
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", FreshInstall(s, "dry"), s.PatchDir, trust, "auto"], crashLog: log, resumeRecordBytes: RecordBytes);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        var at = when == "receiving"
            ? points.Select((p, i) => (p, i)).Where(x => x.p.Contains("journal progress " + recipe.Sha256[..12], StringComparison.Ordinal)).ElementAt(2).i + 1
            : Array.FindIndex(points, p => p.Contains("journal begin ", StringComparison.Ordinal)) + 1;
        var install = FreshInstall(s, "killed");
        var run = CrashHost.Start(["apply", install, s.PatchDir, trust, "auto"], crashAt: at + 1, resumeRecordBytes: RecordBytes);
        Assert.That(run.Killed, Is.True, run.StdErr);
        var recorded = RecordedOps(points, at, recipe);
        Assert.That(recorded, when == "receiving" ? Is.InRange(1, recipe.Ops.Count - 1) : Is.EqualTo(recipe.Ops.Count));

        var recovered = Patcher.Recover(install, s.Options);

        Assert.That(recovered.Outcome, Is.EqualTo(when == "receiving" ? RecoveryOutcome.NothingPending : RecoveryOutcome.RolledBack));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(PatchScenario.Listing(s.OldTree)), "recovery leaves the old version");
        Assert.That(RawJournal.ProgressRecords(JournalOf(install)), Is.EqualTo(new Dictionary<string, int> { [recipe.Sha256] = recorded }), "the record survives recovery");
        Assert.That(Directory.EnumerateFileSystemEntries(StateOf(install)).Select(Path.GetFileName), Has.No.Member("incoming").And.No.Member("pending")
            .And.None.StartsWith("staging-"));
        NextApplyContinues(s, install, CommitStrategy.Auto, recipe.Ops.Count - recorded);
    }

    /// <summary>A launcher's pause cancels the apply just after a progress record; the next apply continues after it.</summary>
    [TestCase(CommitStrategy.Auto)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_CancelledInsideALargeDeltaFile_NextApplyRunsOnlyTheOperationsAfterTheRecordedPrefix(CommitStrategy strategy)
    {
        var (s, recipe, _) = LargeDeltaGame("resume-cancel-" + strategy);
        using var _ = s;
        var install = FreshInstall(s, "paused");
        using var cts = new CancellationTokenSource();
        var fs = new SyncHookFileOps(FileOps.Instance, Path.Join(StateOf(install), "partial"), 3, cts.Cancel);

        var records = ApplyCancelled(s, install, fs, strategy, cts.Token);

        Assert.That(fs.Syncs, Is.GreaterThanOrEqualTo(3));
        Assert.That(records.Keys, Is.EqualTo(new[] { recipe.Sha256 }), "the record survives the cancel");
        var recorded = records[recipe.Sha256];
        Assert.That(recorded, Is.InRange(1, recipe.Ops.Count - 1));
        NextApplyContinues(s, install, strategy, recipe.Ops.Count - recorded);
    }

    /// <summary>
    /// A pause while staging (the content complete and recorded, the transaction rolled back): the next apply rebuilds
    /// nothing.
    /// </summary>
    [TestCase(CommitStrategy.Auto)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_CancelledWhileStagingALargeDeltaFile_NextApplyRebuildsNothing(CommitStrategy strategy)
    {
        var (s, recipe, _) = LargeDeltaGame("resume-cancel-staging-" + strategy);
        using var _ = s;
        var install = FreshInstall(s, "paused");
        using var cts = new CancellationTokenSource();
        var staging = Path.DirectorySeparatorChar + "staging-";
        var fs = new HardLinkHookFileOps(FileOps.Instance, p => p.Contains(staging, StringComparison.Ordinal) && p.EndsWith("huge.pak", StringComparison.Ordinal), cts.Cancel);

        var records = ApplyCancelled(s, install, fs, strategy, cts.Token);

        Assert.That(fs.Fired, Is.True, "cancelled while staging");
        Assert.That(records, Is.EqualTo(new Dictionary<string, int> { [recipe.Sha256] = recipe.Ops.Count }), "the complete content's record survives");
        NextApplyContinues(s, install, strategy, 0);
    }

    /// <summary>
    /// The disk fills up just after a progress record: the rebuilt content and its records are given up (the player must
    /// free that space, and the next apply's free-space check counts every byte it writes), unlike a pause.
    /// </summary>
    [Test]
    public void Apply_DiskFullInsideALargeDeltaFile_RebuiltContentAndRecordsRemoved()
    {
        var (s, recipe, _) = LargeDeltaGame("resume-full");
        using var _ = s;
        var install = FreshInstall(s, "full");
        var partial = Path.Join(StateOf(install), "partial");
        var fs = new SyncHookFileOps(FileOps.Instance, partial, 3, () => throw NativeErrors.FromErrno(FaultyFileOps.ENOSPC, "fsync", partial));

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(fs) { ProgressRecordBytes = RecordBytes }, install, s.PatchDir, s.Options, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DiskFull), ex.Message);
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(PatchScenario.Listing(s.OldTree)));
        Assert.That(Directory.Exists(partial), Is.False, "the rebuilt content is deleted");
        Assert.That(RawJournal.ProgressRecords(JournalOf(install)), Is.Empty, "and so are its records");
        var (result, opsRun, _) = ApplyHere(s, install);
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(opsRun, Is.EqualTo(recipe.Ops.Count));
    }
}
