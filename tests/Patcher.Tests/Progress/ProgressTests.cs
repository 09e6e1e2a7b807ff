using Patching.Progress;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Progress;

/// <summary>Progress a person can trust: nothing a caller receives goes back, on either strategy, also when resuming.</summary>
public sealed class ProgressTests
{
    private static void AssertTrustworthy(ProgressRecorder recorder)
    {
        var reports = recorder.Reports;
        Assert.That(reports, Is.Not.Empty);
        Assert.That(recorder.FirstRegression(), Is.Null);
        Assert.That(reports[0].Phase, Is.EqualTo(PatchPhase.Verifying));
        Assert.That(reports[^1].Phase, Is.EqualTo(PatchPhase.Done));
        Assert.That(reports[^1].Fraction, Is.EqualTo(1.0));
        Assert.That(reports.Where(r => r.Phase != PatchPhase.Done).Select(r => r.Fraction), Has.All.LessThan(1.0), "100% only when done");
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public async Task ApplyAsync_EveryReport_NeverGoesBack(CommitStrategy strategy)
    {
        if (strategy == CommitStrategy.Swap && !OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame(extraFiles: 300, changeEvery: 3).Install();
        s.BuildPatch();
        var recorder = new ProgressRecorder();

        await Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy }, recorder);

        AssertTrustworthy(recorder);
        var verifying = recorder.Reports.Where(r => r.Phase == PatchPhase.Verifying).ToList();
        Assert.That(verifying, Has.Count.GreaterThanOrEqualTo(3), "verifying reports each of its steps");
        Assert.That(verifying[^1].FilesDone, Is.EqualTo(verifying[^1].FilesTotal).And.GreaterThan(0));
        var staging = recorder.Reports.Where(r => r.Phase == PatchPhase.Staging).ToList();
        Assert.That(staging.Select(r => r.CurrentItem), Has.Some.Not.Null, "staging names the file it works on");
        Assert.That(staging[^1].BytesDone, Is.EqualTo(staging[^1].BytesTotal), "staging ends with every byte done");
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_VolumeWithoutHardLinks_StagingNeverExceedsItsAnnouncedTotal(CommitStrategy strategy)
    {
        // Where links are impossible, staging copies the unchanged files it would have linked. Those bytes are not in
        // the plan's bytes to write: counted as progress they ran past the total announced ("2.8 MiB of 2.7 MiB"), and
        // the total had to follow them up.
        if (strategy == CommitStrategy.Swap && !OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame(extraFiles: 60, changeEvery: 3).Install();
        s.BuildPatch();
        var recorder = new ProgressRecorder();

        Patching.Transaction.TransactionEngine.Apply(new Patching.Transaction.EngineSettings(new NoHardLinkFileOps(Patching.IO.FileOps.Instance)), s.InstallDir, s.PatchDir,
            s.Options with { Strategy = strategy }, recorder, CancellationToken.None);

        AssertTrustworthy(recorder);
        var staging = recorder.Reports.Where(r => r.Phase == PatchPhase.Staging).ToList();
        Assert.That(staging.Select(r => r.BytesTotal).Distinct(), Has.Exactly(1).Items, "the total announced first is never raised");
        Assert.That(staging.Select(r => r.BytesDone), Has.All.LessThanOrEqualTo(staging[0].BytesTotal));
        Assert.That(staging[^1].BytesDone, Is.EqualTo(staging[^1].BytesTotal), "staging ends with every byte done");
    }

    [Test]
    public async Task ApplyAsync_VerifyBaseHashes_VerifyingNamesEachFileAsItIsChecked()
    {
        using var s = new PatchScenario().WithSmallGame(extraFiles: 40, changeEvery: 3).Install();
        s.BuildPatch();
        var recorder = new ProgressRecorder();

        await Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options with { VerifyBaseHashes = true }, recorder);

        AssertTrustworthy(recorder);
        var named = recorder.Reports.Where(r => r.Phase == PatchPhase.Verifying && r.CurrentItem is { } item && File.Exists(Path.Join(s.InstallDir, item)))
            .Select(r => r.CurrentItem).Distinct().ToList();
        Assert.That(named, Has.Count.GreaterThan(40), "every file of the new version is named while its base is checked");
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    [Category("Crash")]
    public async Task ApplyAsync_ResumedAfterAKillMidStaging_NeverGoesBack(CommitStrategy strategy)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host kills itself with SIGKILL (Linux)");
        using var s = new PatchScenario("resume-progress").WithSmallGame(extraFiles: 400, changeEvery: 1).Install();
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        var name = strategy == CommitStrategy.Swap ? "swap" : "layered";

        // Kill the first attempt just after it journaled its first batch of staged files.
        var log = Path.Join(s.Root, "points.log");
        var probe = Path.Join(s.Root, "probe", "game");
        PatchScenario.CopyTree(s.OldTree, probe);
        Assert.That(CrashHost.Start(["apply", probe, s.PatchDir, trust, name], crashLog: log).ExitCode, Is.EqualTo(0));
        var firstRows = Array.FindIndex(File.ReadAllLines(log), p => p.Contains("journal files", StringComparison.Ordinal));
        Assert.That(firstRows, Is.GreaterThanOrEqualTo(0), "the apply journals staged files");
        var killed = CrashHost.Start(["apply", s.InstallDir, s.PatchDir, trust, name], crashAt: firstRows + 1);
        Assert.That(killed.Killed, Is.True, killed.StdErr);
        var recorder = new ProgressRecorder();

        var result = await Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy }, recorder);

        Assert.That(result.Resumed, Is.True);
        AssertTrustworthy(recorder);
    }

    [Test]
    public async Task VerifyAsync_ReportsAsItReads_BytesGrowToTheTotal()
    {
        using var s = new PatchScenario().WithSmallGame(extraFiles: 50).InstallThroughPatcher();
        var recorder = new ProgressRecorder();

        var report = await Patcher.VerifyAsync(s.InstallDir, s.Options, recorder);

        Assert.That(report.IsIntact, Is.True);
        AssertTrustworthy(recorder);
        var verifying = recorder.Reports.Where(r => r.Phase == PatchPhase.Verifying).ToList();
        Assert.That(verifying.Count, Is.GreaterThan(report.FilesChecked), "a report per file and per buffer read, not one at the start");
        Assert.That(verifying[0].BytesTotal, Is.GreaterThan(0), "the total is known from the first report");
        Assert.That(verifying[^1].BytesDone, Is.EqualTo(verifying[^1].BytesTotal));
        Assert.That(verifying[^1].FilesDone, Is.EqualTo(report.FilesChecked));
    }

    [Test]
    public void Tracker_StepsOfOnePhase_JoinedWithoutGoingBack()
    {
        var recorder = new ProgressRecorder();
        var tracker = ProgressTracker.Wrap(recorder, TimeProvider.System)!;

        // What the engine reported before: blobs received 0/5 -> 5/5 with bytes to 100%, then files 0/6 in the same
        // phase; a late report of the earlier phase; bytes restarting at 0 with another total.
        tracker.Report(new PatchProgress(PatchPhase.Verifying, 0, 0, 0, 0));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 0, 5, 0, 100));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 0, 5, 100, 100));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 5, 5, 100, 100));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 0, 6, 0, 90));
        tracker.Report(new PatchProgress(PatchPhase.Verifying, 3, 3, 0, 0));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 3, 6, 100, 100));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 6, 6, 100, 100));
        tracker.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));

        Assert.That(recorder.FirstRegression(), Is.Null);
        var staging = recorder.Reports.Where(r => r.Phase == PatchPhase.Staging).ToList();
        Assert.That(staging[^1].FilesDone, Is.EqualTo(11), "5 blobs and 6 files");
        Assert.That(staging[^1].FilesTotal, Is.EqualTo(11));
        Assert.That(recorder.Reports.Count(r => r.Phase == PatchPhase.Verifying), Is.EqualTo(1), "the late report is dropped");
        Assert.That(recorder.Reports[^1].Fraction, Is.EqualTo(1.0));
    }

    [Test]
    public void Tracker_BytesOverTime_RateAndRemainingEstimated()
    {
        var time = new FakeTimeProvider();
        var recorder = new ProgressRecorder();
        var tracker = ProgressTracker.Wrap(recorder, time)!;

        tracker.Report(new PatchProgress(PatchPhase.Staging, 0, 1, 0, 100_000_000));
        time.Advance(TimeSpan.FromSeconds(2));
        tracker.Report(new PatchProgress(PatchPhase.Staging, 0, 1, 20_000_000, 100_000_000));

        var last = recorder.Reports[^1];
        Assert.That(last.BytesPerSecond, Is.EqualTo(10_000_000).Within(1));
        Assert.That(last.Remaining, Is.EqualTo(TimeSpan.FromSeconds(8)));
        Assert.That(recorder.Reports[0].Remaining, Is.Null, "no estimate before the phase has run a while");
    }
}
