using System.Globalization;
using System.Text.RegularExpressions;
using Patching.Manifests;
using Patching.Tests.Commit;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// A killed apply of a large multi-operation delta file resumes after the prefix the journal recorded, without running the
/// operations that wrote it again, and never trusts a prefix that changed after its record. The apply runs in a child
/// process killed with SIGKILL (the crash harness's host); the next apply runs here, with its log captured.
/// </summary>
[Category("Crash")]
public sealed partial class ContentResumeTests
{
    /// <summary>Bytes between two progress records in the killed process: about ten records in the 3 MiB file.</summary>
    private const long RecordBytes = 256 * 1024;

    private const string Huge = "data/huge.pak";

    [GeneratedRegex(@"Rebuilt (\d+) contents: (\d+) operations run")]
    private static partial Regex RebuiltLine();

    /// <summary>The old version has a 3 MiB file; the new one changes a byte every 300 KB of it (copies and deltas alternate).</summary>
    private static (PatchScenario S, ContentRecipe Recipe, string Trust) LargeDeltaGame(string name)
    {
        var s = new PatchScenario(name).WithFormat(2);
        var old = Format2ApplyTests.Noise(31, 3 << 20);
        PatchScenario.Write(s.OldTree, Huge, old);
        var edited = (byte[])old.Clone();
        for (var at = 100_000; at < edited.Length; at += 300_000) edited[at] ^= 0x5A;
        PatchScenario.Write(s.NewTree, Huge, edited);
        PatchScenario.Write(s.OldTree, "readme.txt", "same in both versions");
        PatchScenario.Write(s.NewTree, "readme.txt", "same in both versions");
        var built = s.BuildPatch();
        var recipe = built.Manifest.Recipes.Single();
        Assert.That(recipe.Ops.Count, Is.GreaterThanOrEqualTo(15), "the file is rebuilt by many operations");
        Assert.That(recipe.Ops.Any(o => o.Kind == DeltaOpKind.Copy) && recipe.Ops.Any(o => o.Refs.Count > 0), Is.True, "copies and deltas");
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        return (s, recipe, trust);
    }

    private static string FreshInstall(PatchScenario s, string run)
    {
        var install = Path.Join(s.Root, run, "game");
        PatchScenario.CopyTree(s.OldTree, install);
        return install;
    }

    /// <summary>The ops of the content's last progress record among the first <paramref name="before"/> crash points (0: none).</summary>
    private static int RecordedOps(string[] points, int before, ContentRecipe recipe)
    {
        var prefix = "journal progress " + recipe.Sha256[..12] + " ";
        var recorded = 0;
        for (var i = 0; i < before; i++)
        {
            var at = points[i].IndexOf(prefix, StringComparison.Ordinal);
            if (at >= 0) recorded = int.Parse(points[i][(at + prefix.Length)..], CultureInfo.InvariantCulture);
        }

        return recorded;
    }

    private static (ApplyResult Result, int OpsRun, ListLogger Log) ApplyHere(PatchScenario s, string install, CommitStrategy strategy = CommitStrategy.Auto)
    {
        var log = new ListLogger();
        var result = Patcher.Apply(install, s.PatchDir, s.Options with { Logger = log, Strategy = strategy });
        var line = log.Lines.Select(l => RebuiltLine().Match(l)).Single(m => m.Success);
        return (result, int.Parse(line.Groups[2].Value, CultureInfo.InvariantCulture), log);
    }

    /// <param name="parallel">The killed process produces the file's operations several at once (its threshold lowered to 1 byte).</param>
    [TestCase(false)]
    [TestCase(true)]
    public void Apply_KilledAtEveryPointInsideALargeDeltaFile_NextApplyRunsOnlyTheOperationsAfterTheRecordedPrefix(bool parallel)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host's kill points are counted on Linux");
        var (s, recipe, trust) = LargeDeltaGame(parallel ? "resume-every-parallel" : "resume-every");
        var parallelFromBytes = parallel ? 1 : 0;
        using var _ = s;
        var newListing = PatchScenario.Listing(s.NewTree);
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", FreshInstall(s, "dry"), s.PatchDir, trust, "auto"], crashLog: log, resumeRecordBytes: RecordBytes, parallelFromBytes: parallelFromBytes);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        var partial = "partial" + Path.DirectorySeparatorChar + recipe.Sha256;
        var first = Array.FindIndex(points, p => p.Contains("create ", StringComparison.Ordinal) && p.EndsWith(partial, StringComparison.Ordinal)) + 1;
        var complete = Array.FindIndex(points, p => p.EndsWith($"journal progress {recipe.Sha256[..12]} {recipe.Ops.Count}", StringComparison.Ordinal)) + 1;
        Assert.That(first, Is.GreaterThan(0), "the content is rebuilt into the partial directory");
        Assert.That(complete, Is.GreaterThan(first), "the complete content is recorded");
        Assert.That(points.Count(p => p.Contains("journal progress", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(5));

        var failures = new List<string>();
        var resumedRuns = 0;
        var opsSaved = 0;
        for (var k = first; k <= complete + 1; k++)
        {
            var install = FreshInstall(s, "k" + k);
            var run = CrashHost.Start(["apply", install, s.PatchDir, trust, "auto"], crashAt: k, resumeRecordBytes: RecordBytes, parallelFromBytes: parallelFromBytes);
            if (!run.Killed)
            {
                failures.Add($"point {k} ({points[k - 1]}): not killed (exit {run.ExitCode}: {run.StdErr.Trim()})");
                continue;
            }

            var recorded = RecordedOps(points, k - 1, recipe);
            var (result, opsRun, applyLog) = ApplyHere(s, install);
            if (result.Status != ApplyStatus.Applied || !PatchScenario.Listing(install).SequenceEqual(newListing))
                failures.Add($"point {k} ({points[k - 1]}): the next apply did not end on the new version exactly");
            if (opsRun != recipe.Ops.Count - recorded)
                failures.Add($"point {k} ({points[k - 1]}): {opsRun} operations run, expected {recipe.Ops.Count - recorded} after {recorded} recorded");
            var resumed = applyLog.Ids.Contains(PatcherLogEvents.ContentResumed.Id);
            if (resumed != recorded > 0) failures.Add($"point {k} ({points[k - 1]}): resumed={resumed} with {recorded} operations recorded");
            if (resumed) resumedRuns++;
            opsSaved += recorded;
            Directory.Delete(Path.Join(s.Root, "k" + k), recursive: true);
        }

        TestContext.Out.WriteLine($"content resume: {complete + 2 - first} kill points inside a {recipe.Size}-byte file of {recipe.Ops.Count} operations; {resumedRuns} next applies continued a recorded prefix, {opsSaved} operations not run again");
        Assert.That(failures, Is.Empty);
        Assert.That(resumedRuns, Is.GreaterThan(3));
    }

    [Test]
    public void Apply_PartialContentChangedAfterItsRecord_ContentRebuiltFromItsStart()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host's kill points are counted on Linux");
        var (s, recipe, trust) = LargeDeltaGame("resume-tampered");
        using var _ = s;
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", FreshInstall(s, "dry"), s.PatchDir, trust, "auto"], crashLog: log, resumeRecordBytes: RecordBytes);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        // Killed at the point after the third progress record: three records are durable.
        var third = points.Select((p, i) => (p, i)).Where(x => x.p.Contains("journal progress " + recipe.Sha256[..12], StringComparison.Ordinal)).ElementAt(2).i + 1;
        var install = FreshInstall(s, "killed");
        var run = CrashHost.Start(["apply", install, s.PatchDir, trust, "auto"], crashAt: third + 1, resumeRecordBytes: RecordBytes);
        Assert.That(run.Killed, Is.True, run.StdErr);
        var recorded = RecordedOps(points, third, recipe);
        Assert.That(recorded, Is.GreaterThan(0));

        // The prefix the journal describes is changed on disk (its length kept).
        var partial = Path.Join(s.Root, "killed", ".game.patcher", "partial", recipe.Sha256);
        using (var f = new FileStream(partial, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 1000;
            var b = f.ReadByte();
            f.Position = 1000;
            f.WriteByte((byte)(b ^ 0xFF));
        }

        var (result, opsRun, applyLog) = ApplyHere(s, install);

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(applyLog.Ids, Has.No.Member(PatcherLogEvents.ContentResumed.Id), "the changed prefix is not continued");
        Assert.That(applyLog.Lines, Has.Some.Contains("changed since they were recorded"));
        Assert.That(opsRun, Is.EqualTo(recipe.Ops.Count), "every operation runs again");
    }
}
