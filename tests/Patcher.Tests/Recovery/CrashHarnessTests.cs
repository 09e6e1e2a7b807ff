using Patching.Manifests;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Recovery;

/// <summary>
/// The exhaustive process-crash test: an apply of a small patch (added, changed, removed, renamed files, an
/// executable, a new empty directory, a removed directory, and user files) runs in a child process that is
/// killed with SIGKILL at its 1st, 2nd, … N-th crash point (every mutating file operation and every journal
/// step). After each kill, recovery runs; the tree must equal the old or the new version exactly, the user
/// files must be intact, nothing may be left in the state directory, and a following apply must succeed.
/// "layered" forces the per-file commit on Linux: kills land between two backups, between the rename of one
/// file and its journal row, and in the cleanup. (Recovery itself runs in-process here, unkilled.)
/// </summary>
[Category("Crash")]
public sealed class CrashHarnessTests
{
    private static readonly string[] UserFiles = ["saves/slot1.sav", "data/user-mod.txt", "legacy/my-notes.txt"];

    // "legacy" is a directory of the old version only; it stays because the user's notes are in it.
    private static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves" or "legacy";

    [TestCase("swap")]
    [TestCase("layered")]
    [TestCase("swap-link")]
    [TestCase("swap", 2)]
    [TestCase("layered", 2)]
    public void Apply_KilledAtEveryCrashPoint_RecoveryYieldsOldOrNewExactly(string strategy, int format = 1)
    {
        if (strategy != "layered" && !OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy (and linking blobs) needs Linux");
        using var s = new PatchScenario("crash").WithSmallGame(extraFiles: 3).WithFormat(format);
        if (format == 2) Deltas.Format2ApplyTests.AddDeltaContent(s);
        if (format == 2) ContentWindowPatch.AddBuilds(s, 20_000);
        if (strategy == "swap-link")
        {
            // Incompressible content is stored raw, so these blobs are hard-linked (LinkPatchBlobs) instead of copied.
            var noise = new byte[40_000];
            new Random(7).NextBytes(noise);
            PatchScenario.Write(s.NewTree, "data/level1.pak", noise);
            new Random(8).NextBytes(noise);
            PatchScenario.Write(s.NewTree, "bin/new-tool", noise, executable: true);
        }

        var built = s.BuildPatch();
        if (format == 2)
        {
            ContentWindowPatch.Rewrite(s); // deltas reading contents the patch rebuilds earlier
            var ops = built.Manifest.Recipes.SelectMany(r => r.Ops).ToList();
            Assert.That(ops.Any(o => o.Kind == DeltaOpKind.Copy) && ops.Any(o => o.Refs.Count > 0), Is.True, "the patch reuses chunks and ships deltas");
        }

        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        // Layered: the player also has a file where the new version adds one, so a step moves it aside and a later
        // step places the new file at the same path (kills between them, before their journal rows, included).
        var collision = strategy == "layered";
        var oldListing = PatchScenario.Listing(PrepareInstall(s, Path.Join(s.Root, "old-listing"), collision), IsUserPath);
        var newListing = PatchScenario.Listing(s.NewTree, IsUserPath);

        // Dry run with logging only: how many crash points does this apply have, and which?
        var countRun = Path.Join(s.Root, "count");
        var countInstall = PrepareInstall(s, countRun, collision);
        var log = Path.Join(s.Root, "points.log");
        // Format 2: progress records inside the 600 KB rebuilt file, so kills land between them too.
        var recordBytes = format == 2 ? 64 * 1024 : 0;
        var dry = CrashHost.Start(["apply", countInstall, s.PatchDir, trust, strategy], crashLog: log, resumeRecordBytes: recordBytes);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        if (format == 2) Assert.That(points.Count(p => p.Contains("journal progress", StringComparison.Ordinal)), Is.GreaterThan(1), "progress records inside a rebuilt file");
        var n = points.Length;
        string[] expectedPoints = strategy switch
        {
            "swap" => ["journal begin", "journal backup-complete", "journal patched", "journal done", "exchange"],
            "swap-link" => ["link-open", "journal begin", "journal backup-complete", "journal patched", "journal done", "exchange"],
            _ => ["journal begin", "journal ops", "journal backup-complete", "journal op", "journal patched", "journal done", "rename", "link"],
        };
        foreach (var state in expectedPoints)
            Assert.That(points.Any(p => p.Contains(state, StringComparison.Ordinal)), Is.True, $"no crash point at '{state}'");

        var endedOld = 0;
        var endedNew = 0;
        var failures = new List<string>();
        var failedPoints = new HashSet<int>();
        for (var k = 1; k <= n; k++)
        {
            var failuresBefore = failures.Count;
            var runDir = Path.Join(s.Root, "k" + k);
            var install = PrepareInstall(s, runDir, collision);
            var run = CrashHost.Start(["apply", install, s.PatchDir, trust, strategy], crashAt: k, resumeRecordBytes: recordBytes);
            if (!run.Killed)
            {
                failures.Add($"point {k} ({points[k - 1]}): child was not killed (exit {run.ExitCode}: {run.StdErr.Trim()})");
                continue;
            }

            var recovered = Patcher.Recover(install);
            recovered.Cleanup.Wait(); // leftover old files are deleted in the background
            var listing = PatchScenario.Listing(install, IsUserPath);
            if (listing.SequenceEqual(oldListing)) endedOld++;
            else if (listing.SequenceEqual(newListing)) endedNew++;
            else failures.Add($"point {k} ({points[k - 1]}): tree is neither old nor new after {recovered.Outcome}: {string.Join(" | ", listing.Except(newListing).Take(5))}");

            foreach (var f in UserFiles)
            {
                var path = Path.Join(install, f);
                if (!File.Exists(path) || File.ReadAllText(path) != "user " + f) failures.Add($"point {k} ({points[k - 1]}): user file {f} lost or changed");
            }

            var stateDir = Path.Join(runDir, ".game.patcher");
            if (collision && listing.SequenceEqual(newListing)
                && !Directory.EnumerateDirectories(stateDir, "preserved-*").Select(d => Path.Join(d, CollisionFile)).Any(f => File.Exists(f) && File.ReadAllText(f) == "user " + CollisionFile))
                failures.Add($"point {k} ({points[k - 1]}): the player's {CollisionFile} was not kept in preserved-*");
            var leftovers = StateLeftovers(stateDir);
            if (leftovers.Count > 0) failures.Add($"point {k} ({points[k - 1]}): leftovers {string.Join(",", leftovers)}");

            // Whatever recovery chose, the launcher can carry on: the next apply ends on the new version.
            if (!listing.SequenceEqual(newListing))
            {
                var again = CrashHost.Start(["apply", install, s.PatchDir, trust, strategy], resumeRecordBytes: recordBytes);
                if (again.ExitCode != 0 || !PatchScenario.Listing(install, IsUserPath).SequenceEqual(newListing))
                    failures.Add($"point {k} ({points[k - 1]}): apply after recovery failed: {again.StdErr.Trim()}");
            }

            if (failures.Count > failuresBefore) failedPoints.Add(k);
            Directory.Delete(runDir, recursive: true);
        }

        // The patch itself is never written: after every kill its blobs still verify (linked ones included).
        PatchPackage.Open(s.PatchDir, ManifestLimits.Default).VerifyAllBlobs(CancellationToken.None);
        TestContext.Out.WriteLine($"crash harness ({strategy}): N={n} crash points, {n - failedPoints.Count} exact recoveries ({endedOld} ended old, {endedNew} ended new)");
        Assert.That(failures, Is.Empty);
        Assert.That(endedOld, Is.GreaterThan(0), "some kills must land before the commit");
        Assert.That(endedNew, Is.GreaterThan(0), "some kills must land after the commit");
    }

    [Test]
    public void CrashHook_ProcessNotOptedIn_EnvironmentVariablesAreIgnored()
    {
        // patchtool does not set the opt-in switch: the variables that arm the hook in the crash host must not
        // kill it or make it write a log.
        using var s = new PatchScenario("not-armed").WithSmallGame().Install();
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        var log = Path.Join(s.Root, "points.log");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Join(AppContext.BaseDirectory, "patchtool.dll"), "apply", "--patch", s.PatchDir, "--target", s.InstallDir, "--trust", trust })
            psi.ArgumentList.Add(a);
        psi.Environment["PATCHER_TEST_CRASH_AT"] = "1";
        psi.Environment["PATCHER_TEST_CRASH_LOG"] = log;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEnd();
        p.WaitForExit();

        Assert.That(p.ExitCode, Is.EqualTo(0), err.Result);
        Assert.That(File.Exists(log), Is.False);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    /// <summary>A file of the player's where the new version adds one (<see cref="PatchScenario.WithSmallGame"/> adds it).</summary>
    private const string CollisionFile = "data/level3.pak";

    /// <summary>
    /// The k-th crash point of a dry run must be the k-th call of the killed run, which is another process. The layered
    /// commit runs its steps one at a time, so from the backup-complete row to the patched row two processes must make
    /// the same calls in the same order. (Its batches of directory fsyncs come from a set; .NET keeps an ordinal string
    /// set's hashes unseeded until many collisions, so the set's order held across processes here too. They are now
    /// issued in name order, and this guards the assumption the harness is built on.)
    /// </summary>
    [Test]
    public void Apply_LayeredCommitInTwoProcesses_SameCallsInTheSameOrder()
    {
        using var s = new PatchScenario("crash-order").WithSmallGame(extraFiles: 12, changeEvery: 1);
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        List<string> CommitCalls(string run)
        {
            var install = PrepareInstall(s, Path.Join(s.Root, run), collision: true);
            var log = Path.Join(s.Root, run + ".log");
            var dry = CrashHost.Start(["apply", install, s.PatchDir, trust, "layered"], crashLog: log);
            Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
            var calls = File.ReadAllLines(log).Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..]).ToList();
            var from = calls.FindIndex(c => c.StartsWith("journal backup-complete", StringComparison.Ordinal));
            var to = calls.FindIndex(c => c.StartsWith("journal patched", StringComparison.Ordinal));
            Assert.That(from, Is.GreaterThanOrEqualTo(0).And.LessThan(to));
            var tx = calls.First(c => c.StartsWith("journal begin ", StringComparison.Ordinal))["journal begin ".Length..];
            return calls.GetRange(from, to - from + 1).Select(c => c.Replace(Path.Join(s.Root, run), "<run>", StringComparison.Ordinal)
                .Replace(tx, "<tx>", StringComparison.Ordinal)).ToList();
        }

        var first = CommitCalls("one");
        var second = CommitCalls("two");

        Assert.That(first.Count(c => c.StartsWith("fsync-dir ", StringComparison.Ordinal)), Is.GreaterThan(2), "the commit fsyncs several directories");
        Assert.That(second, Is.EqualTo(first));
    }

    /// <summary>
    /// What a finished or recovered transaction must not leave in the state directory. Partly rebuilt contents that a
    /// progress record still describes are kept for the next apply of the same patch.
    /// </summary>
    internal static List<string?> StateLeftovers(string stateDir) => Directory.Exists(stateDir)
        ? Directory.EnumerateFileSystemEntries(stateDir).Select(Path.GetFileName).Where(x => x!.StartsWith("staging-", StringComparison.Ordinal) || x.StartsWith("old-", StringComparison.Ordinal) || x.StartsWith("backup-", StringComparison.Ordinal) || x is "pending" or "incoming" or "trash"
            || (x == "partial" && RawJournal.PartialHoldsUnrecorded(Directory.EnumerateFileSystemEntries(Path.Join(stateDir, x)).Select(p => Path.GetFileName(p)), Path.Join(stateDir, "journal.db")))).ToList()
        : [];

    private static string PrepareInstall(PatchScenario s, string runDir, bool collision = false)
    {
        var install = Path.Join(runDir, "game");
        PatchScenario.CopyTree(s.OldTree, install);
        foreach (var f in UserFiles) PatchScenario.Write(install, f, "user " + f);
        if (collision) PatchScenario.Write(install, CollisionFile, "user " + CollisionFile);
        return install;
    }
}
