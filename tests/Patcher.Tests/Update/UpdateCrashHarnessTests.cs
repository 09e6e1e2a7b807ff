using Patching.Store;
using Patching.Tests.TestHelpers;
using Patching.Update;

namespace Patching.Tests.Update;

/// <summary>
/// The exhaustive process-crash test of <see cref="Patcher.UpdateAsync"/>: an install of version 1 (installed by the update
/// path itself, with a player's save in it) is updated to version 2 from a release store directory by a child process
/// that is killed with SIGKILL at its 1st, 2nd, … N-th crash point (every mutating file operation of the transaction
/// and every journal step). After each kill, recovery runs with the trusted key; the tree must equal version 1 or
/// version 2 exactly, the save must be intact, nothing may be left in the state directory, and a second
/// <see cref="Patcher.UpdateAsync"/> must end on version 2. (The pieces, or the delta, are written to the download folder
/// with the plain file API, outside the crash-point seam, so the points numbered here are those of the commit.) Run once
/// from a store of pieces and once from a store with a delta from version 1, which the update then takes.
/// </summary>
[Category("Crash")]
public sealed class UpdateCrashHarnessTests
{
    private const string Product = "crash-game";
    private const string Save = "saves/slot1.sav";

    private static bool IsUserPath(string rel) => rel == "saves" || rel.StartsWith("saves/", StringComparison.Ordinal);

    [TestCase("swap", false)]
    [TestCase("layered", false)]
    [TestCase("swap", true)]
    [TestCase("layered", true)]
    public async Task UpdateAsync_KilledAtEveryCrashPoint_RecoveryYieldsOldOrNewExactly(string strategy, bool throughDelta)
    {
        if (strategy != "layered" && !OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var temp = TempDir.ForCurrentTest();
        var v1 = WriteTree(temp["trees/v1"], 1);
        var v2 = WriteTree(temp["trees/v2"], 2);
        var storeV1 = temp["store-v1"];
        var store = temp["store"];
        Publish(storeV1, v1, "1.0.0");
        Publish(store, v1, "1.0.0");
        Publish(store, v2, "2.0.0", throughDelta ? "1.0.0" : null);
        var trust = RepoPaths.TestPub;
        var options = new UpdateOptions { Apply = new PatcherOptions { TrustedKeys = [File.ReadAllText(trust)] } };
        var oldListing = HashListing.Text(v1);
        var newListing = HashListing.Text(v2);

        async Task<string> PrepareInstall(string runDir)
        {
            var install = Path.Join(runDir, "game");
            TreeFactory.WriteFile(install, Save, "slot 1\n"u8.ToArray());
            var installed = await Patcher.UpdateAsync(install, new DirectorySource(storeV1), options);
            Assert.That(installed.Status, Is.EqualTo(UpdateStatus.Updated));
            Assert.That(HashListing.Text(install, IsUserPath), Is.EqualTo(oldListing));
            return install;
        }

        // The route the update takes from version 1: the store's delta when it has one (cheaper than the changed piece).
        var route = await Patcher.UpdateAsync(await PrepareInstall(temp["route"]), new DirectorySource(store), options);
        Assert.That(route.DeltaFrom, Is.EqualTo(throughDelta ? "1.0.0" : null));

        // Dry run with logging only: how many crash points does this update have, and which?
        var log = temp["points.log"];
        var dry = CrashHost.Start(["update", await PrepareInstall(temp["count"]), store, trust, strategy], crashLog: log);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        var n = points.Length;
        foreach (var state in new[] { "journal begin", "journal backup-complete", "journal patched", "journal done" })
            Assert.That(points.Any(p => p.Contains(state, StringComparison.Ordinal)), Is.True, $"no crash point at '{state}'");

        var endedOld = 0;
        var endedNew = 0;
        var failures = new List<string>();
        for (var k = 1; k <= n; k++)
        {
            var at = $"point {k} ({points[k - 1]})";
            var runDir = temp["k" + k];
            var install = await PrepareInstall(runDir);
            var run = CrashHost.Start(["update", install, store, trust, strategy], crashAt: k);
            if (!run.Killed)
            {
                failures.Add($"{at}: child was not killed (exit {run.ExitCode}: {run.StdErr.Trim()})");
                continue;
            }

            var recovered = Patcher.Recover(install, options.Apply);
            await recovered.Cleanup; // leftover old files are deleted in the background
            var listing = HashListing.Text(install, IsUserPath);
            var version = Patcher.Status(install, options.Apply).InstalledVersion;
            if (listing == oldListing && version == "1.0.0") endedOld++;
            else if (listing == newListing && version == "2.0.0") endedNew++;
            else failures.Add($"{at}: tree is neither version 1 nor version 2 (installed {version}) after {recovered.Outcome}");
            CheckSave(install, at, failures);

            var stateDir = Path.Join(runDir, ".game.patcher");
            var leftovers = Recovery.CrashHarnessTests.StateLeftovers(stateDir);
            if (leftovers.Count > 0) failures.Add($"{at}: leftovers {string.Join(",", leftovers)}");

            // Whatever recovery chose, the launcher carries on: the next update ends on version 2. Every crash point comes
            // after the pieces were verified, so a resumed update finds them all in the download folder and fetches none.
            var endedOnOld = listing == oldListing;
            try
            {
                var again = await Patcher.UpdateAsync(install, new DirectorySource(store), options);
                await (again.Apply?.Cleanup ?? Task.CompletedTask);
                if (HashListing.Text(install, IsUserPath) != newListing || Patcher.Status(install, options.Apply).InstalledVersion != "2.0.0")
                    failures.Add($"{at}: the update after recovery ({again.Status}) did not end on version 2");
                if (again.Status != (endedOnOld ? UpdateStatus.Updated : UpdateStatus.UpToDate))
                    failures.Add($"{at}: the update after recovery ended {again.Status}");
                if (again.PiecesDownloaded != 0) failures.Add($"{at}: the resumed update fetched {again.PiecesDownloaded} pieces again");
                if (Directory.Exists(Path.Join(stateDir, Updater.DownloadsDirName, "2.0.0")))
                    failures.Add($"{at}: the download folder of version 2 is left after the update that found it installed");
            }
            catch (PatcherException ex)
            {
                failures.Add($"{at}: the update after recovery failed: {ex.Code}: {ex.Message}");
            }

            CheckSave(install, at, failures);
            Directory.Delete(runDir, recursive: true);
        }

        TestContext.Out.WriteLine($"update crash harness ({strategy}{(throughDelta ? ", through a delta" : "")}): N={n} crash points, {endedOld} ended on version 1, {endedNew} ended on version 2, {failures.Count} failures");
        Assert.That(failures, Is.Empty);
        Assert.That(endedOld + endedNew, Is.EqualTo(n));
        Assert.That(endedOld, Is.GreaterThan(0), "some kills must land before the commit");
        Assert.That(endedNew, Is.GreaterThan(0), "some kills must land after the commit");
    }

    private static void CheckSave(string install, string at, List<string> failures)
    {
        var path = Path.Join(install, Save);
        if (!File.Exists(path) || File.ReadAllText(path) != "slot 1\n") failures.Add($"{at}: the player's {Save} was lost or changed");
    }

    private static void Publish(string store, string tree, string version, string? deltaFrom = null) => ReleaseStore.Publish(new PublishRequest
    {
        StoreDir = store, TreeDir = tree, Product = Product, Version = version, PrivateKeyPem = File.ReadAllText(RepoPaths.TestKey), Channel = "stable",
        DeltaFrom = deltaFrom,
    });

    /// <summary>
    /// A small game: version 2 changes a few bytes of a file (its other pieces are reused from the install), replaces
    /// another, adds a file in a new directory, removes a file and a directory, and keeps an executable.
    /// </summary>
    private static string WriteTree(string dir, int version)
    {
        var random = new Random(11);
        var big = new byte[150_000];
        random.NextBytes(big);
        if (version == 2) big[75_000] ^= 0xFF;
        TreeFactory.WriteFile(dir, "data/level.pak", big);
        TreeFactory.WriteFile(dir, "readme.txt", System.Text.Encoding.UTF8.GetBytes($"version {version}\n"));
        TreeFactory.WriteFile(dir, "bin/run.sh", "#!/bin/sh\n"u8.ToArray(), executable: true);
        if (version == 1) TreeFactory.WriteFile(dir, "old/gone.txt", "only in version 1\n"u8.ToArray());
        else TreeFactory.WriteFile(dir, "new/added.txt", "added in version 2\n"u8.ToArray());
        return dir;
    }
}
