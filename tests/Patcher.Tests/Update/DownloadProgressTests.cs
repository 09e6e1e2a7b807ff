using Patching.Tests.TestHelpers;
using Patching.Update;

namespace Patching.Tests.Update;

/// <summary>The Downloading phase's reports: counts that never go back, and the rate and time left on the clock given.</summary>
public sealed class DownloadProgressTests
{
    [Test]
    public void Report_AfterOneSecondAtHalfTheBytes_CarriesRateAndTimeLeft()
    {
        var time = new FakeTimeProvider();
        var reports = new List<PatchProgress>();
        var progress = DownloadProgress.Start(new SyncProgress(reports.Add), time)!;

        progress.Report(new PatchProgress(PatchPhase.Downloading, 0, 10, 0, 1_000_000));
        time.Advance(TimeSpan.FromSeconds(1));
        progress.Report(new PatchProgress(PatchPhase.Downloading, 5, 10, 500_000, 1_000_000));
        progress.Report(new PatchProgress(PatchPhase.Downloading, 4, 10, 400_000, 1_000_000));   // a slower connection's late report

        Assert.That(reports[0].BytesPerSecond, Is.Zero, "no rate before the phase has run long enough");
        Assert.That(reports[1].BytesPerSecond, Is.EqualTo(500_000));
        Assert.That(reports[1].Remaining, Is.EqualTo(TimeSpan.FromSeconds(1)));
        Assert.That((reports[2].FilesDone, reports[2].BytesDone), Is.EqualTo((5, 500_000L)), "counts never go back");
        Assert.That(reports.All(r => r.Fraction == 0), Is.True);
    }
}
