using Patching.State;
using Patching.Tests.Recovery;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Hostile;

/// <summary>
/// The swap killed at every crash point while a program works in the install: recovery still yields the old or the new
/// version exactly with the player's files, an old tree the program uses is never deleted under it, and once the program
/// exits the next Recover leaves nothing behind.
/// </summary>
[Category("Crash")]
public sealed class RunningProgramCrashTests
{
    private static readonly string[] UserFiles = ["saves/slot1.sav", "data/user-mod.txt"];

    private static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves";

    private static string PrepareInstall(PatchScenario s, string runDir)
    {
        var install = Path.Join(runDir, "game");
        PatchScenario.CopyTree(s.OldTree, install);
        foreach (var f in UserFiles) PatchScenario.Write(install, f, "user " + f);
        return install;
    }

    [Test]
    public void Apply_KilledAtEveryCrashPointWithProgramInInstall_OldOrNewAndKeptTreeGoneAfterExit()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy and /proc need Linux");
        using var s = new PatchScenario("crash-in-use").WithSmallGame(extraFiles: 3);
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);
        var oldListing = PatchScenario.Listing(PrepareInstall(s, Path.Join(s.Root, "old-listing")), IsUserPath);
        var newListing = PatchScenario.Listing(s.NewTree, IsUserPath);

        var countInstall = PrepareInstall(s, Path.Join(s.Root, "count"));
        var log = Path.Join(s.Root, "points.log");
        int n;
        using (var counted = new ProgramInInstall(Path.Join(countInstall, "data")))
        {
            var dry = CrashHost.Start(["apply", countInstall, s.PatchDir, trust, "swap"], crashLog: log);
            counted.End();
            Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
            n = File.ReadAllLines(log).Length;
        }

        var (endedOld, endedNew, keptWhileRunning) = (0, 0, 0);
        var failures = new List<string>();
        for (var k = 1; k <= n; k++)
        {
            var runDir = Path.Join(s.Root, "k" + k);
            var install = PrepareInstall(s, runDir);
            var layout = new StateLayout(install, null);
            using var game = new ProgramInInstall(Path.Join(install, "data"));
            var run = CrashHost.Start(["apply", install, s.PatchDir, trust, "swap"], crashAt: k);
            if (!run.Killed)
            {
                failures.Add($"point {k}: child was not killed (exit {run.ExitCode}: {run.StdErr.Trim()})");
                continue;
            }

            Patcher.Recover(install).Cleanup.GetAwaiter().GetResult();
            var listing = PatchScenario.Listing(install, IsUserPath);
            if (listing.SequenceEqual(oldListing)) endedOld++;
            else if (listing.SequenceEqual(newListing)) endedNew++;
            else failures.Add($"point {k}: tree is neither old nor new: {string.Join(" | ", listing.Except(newListing).Take(5))}");
            foreach (var f in UserFiles)
            {
                var path = Path.Join(install, f);
                if (!File.Exists(path) || File.ReadAllText(path) != "user " + f) failures.Add($"point {k}: user file {f} lost or changed");
            }

            var cwd = game.WorkingDirectory;
            if (cwd is null || !Directory.Exists(cwd)) failures.Add($"point {k}: the program's working directory was deleted under it ({cwd})");
            if (Directory.Exists(layout.InUseDir)) keptWhileRunning++;

            game.End();
            Patcher.Recover(install).Cleanup.GetAwaiter().GetResult();
            if (Directory.Exists(layout.InUseDir)) failures.Add($"point {k}: the kept tree outlived the program");
            var leftovers = CrashHarnessTests.StateLeftovers(layout.StateDir).Where(x => x != "trash" || Directory.EnumerateFileSystemEntries(layout.TrashDir).Any()).ToList();
            if (leftovers.Count > 0) failures.Add($"point {k}: leftovers {string.Join(",", leftovers)}");

            Directory.Delete(runDir, recursive: true);
        }

        TestContext.Out.WriteLine($"crash harness (swap, program in install): N={n} crash points, {endedOld} ended old, {endedNew} ended new, {keptWhileRunning} kept the old tree while the program ran");
        Assert.That(failures, Is.Empty);
        Assert.That(endedOld, Is.GreaterThan(0));
        Assert.That(endedNew, Is.GreaterThan(0));
        Assert.That(keptWhileRunning, Is.GreaterThan(0), "some recoveries finish a swap and keep the old tree in use");
    }
}
