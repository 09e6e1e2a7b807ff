using Patching.Manifests;
using Patching.Tests.Commit;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// A killed apply of a patch whose deltas read earlier contents (<see cref="ContentWindowPatch"/>: C reads B, B reads A)
/// resumes with the contents an earlier attempt completed: a completed A is not rebuilt, and B decodes against A where
/// the earlier attempt left it (the partial directory), checked against its signed hashes as ever.
/// </summary>
[Category("Crash")]
public sealed class ContentWindowResumeTests
{
    /// <summary>Every content of the chain (120 KB each) is recorded once complete.</summary>
    private const long RecordBytes = 16 * 1024;

    [Test]
    public void Apply_KilledAfterAReferencedContentCompleted_NextApplyReadsItWhereItLiesAndEndsOnTheNewVersion()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host's kill points are counted on Linux");
        using var s = new PatchScenario("window-resume").WithFormat(2);
        PatchScenario.Write(s.OldTree, "readme.txt", "version 1");
        PatchScenario.Write(s.NewTree, "readme.txt", "version 2");
        ContentWindowPatch.AddBuilds(s);
        s.BuildPatch();
        var m = ContentWindowPatch.Rewrite(s);
        var a = m.Recipes.SelectMany(r => r.Ops).SelectMany(o => o.Refs).First(w => w.Content is not null).Content!;
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        var newListing = PatchScenario.Listing(s.NewTree);
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", Fresh(s, "dry"), s.PatchDir, trust, "auto"], crashLog: log, resumeRecordBytes: RecordBytes);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        var recorded = Array.FindIndex(points, p => p.Contains($"journal progress {a[..12]} ", StringComparison.Ordinal)) + 1;
        Assert.That(recorded, Is.GreaterThan(0), "A is recorded once complete");

        // The points after A's record, up to the end of rebuilding (the staging workers' order may differ run to run:
        // what each run must show is the new version exactly; some runs must have continued after a completed A).
        var failures = new List<string>();
        var resumedA = 0;
        for (var k = recorded + 1; k <= Math.Min(points.Length, recorded + 12); k++)
        {
            var install = Fresh(s, "k" + k);
            var run = CrashHost.Start(["apply", install, s.PatchDir, trust, "auto"], crashAt: k, resumeRecordBytes: RecordBytes);
            if (!run.Killed) continue;
            var applyLog = new ListLogger();
            var result = Patcher.Apply(install, s.PatchDir, s.Options with { Logger = applyLog });
            if (result.Status != ApplyStatus.Applied || !PatchScenario.Listing(install).SequenceEqual(newListing))
                failures.Add($"point {k} ({points[k - 1]}): the next apply did not end on the new version exactly");
            if (applyLog.Lines.Any(l => l.Contains($"Continuing content {a}", StringComparison.Ordinal))) resumedA++;
        }

        TestContext.Out.WriteLine($"{resumedA} next applies continued after the completed content A");
        Assert.That(failures, Is.Empty);
        Assert.That(resumedA, Is.GreaterThan(0), "some next apply kept A from the killed attempt and decoded B against it");
    }

    private static string Fresh(PatchScenario s, string run)
    {
        var install = Path.Join(s.Root, run, "game");
        PatchScenario.CopyTree(s.OldTree, install);
        return install;
    }
}
