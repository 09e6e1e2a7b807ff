using Patching.IO;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Transaction;

/// <summary>
/// Another launcher starts patching the same install after this apply found no state directory, and is killed halfway
/// through its commit. This apply's recovery then rolls that update back (one of its staged files no longer verifies),
/// which changes the install after this apply walked it: the plan must be made again from the install as recovery left it.
/// </summary>
[Category("Crash")]
public sealed class RacingApplierTests
{
    [Test]
    public void Apply_AnotherApplierKilledMidCommitBeforeOurWalk_PlansAgainAfterItsRecovery()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("race").WithSmallGame().Install();
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);

        // The other launcher's update adds two files; it is killed right after placing the first, before its `patched` row.
        var otherTree = s.Dir("v1b");
        PatchScenario.CopyTree(s.OldTree, otherTree);
        PatchScenario.Write(otherTree, "extra.dat", "added by the other update");
        PatchScenario.Write(otherTree, "zz-extra.dat", "also added by the other update");
        var otherPatch = Path.Join(s.Root, "patch-b");
        s.BuildPatch(version: "1.5.0", outDir: otherPatch, toDir: otherTree);
        var killAt = PointAfterPlacing(s, otherPatch, trust, "extra.dat");

        var racer = new WalkRacingFileOps(FileOps.Instance, s.InstallDir, () =>
        {
            var run = CrashHost.Start(["apply", s.InstallDir, otherPatch, trust, "layered"], crashAt: killAt);
            Assert.That(run.Killed, Is.True, run.StdErr);
            Assert.That(File.Exists(Path.Join(s.InstallDir, "extra.dat")), Is.True, "killed after placing its first file");
            // Its second file, still staged, no longer verifies: recovery will roll the whole update back.
            var staged = Directory.GetFiles(Path.Join(s.ParentDir, ".game.patcher"), "zz-extra.dat", SearchOption.AllDirectories)
                .Single(f => f.Contains("staging-", StringComparison.Ordinal));
            File.WriteAllText(staged, "bit rot");
        });

        var result = TransactionEngine.Apply(new EngineSettings(racer), s.InstallDir, s.PatchDir,
            s.Options with { Strategy = CommitStrategy.Swap }, null, CancellationToken.None);

        Assert.That(racer.Raced, Is.True);
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "the other update rolled back, ours applied");
    }

    /// <summary>The crash point just after the other apply renames <paramref name="file"/> into place (from a dry run on a copy).</summary>
    private static int PointAfterPlacing(PatchScenario s, string patch, string trust, string file)
    {
        var dryInstall = Path.Join(s.Dir("dry"), "game");
        PatchScenario.CopyTree(s.OldTree, dryInstall);
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", dryInstall, patch, trust, "layered"], crashLog: log);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var points = File.ReadAllLines(log);
        var placed = Array.FindIndex(points, p => p.Contains("rename ", StringComparison.Ordinal) && p.EndsWith("-> " + Path.Join(dryInstall, file), StringComparison.Ordinal));
        Assert.That(placed, Is.GreaterThanOrEqualTo(0), "no crash point places " + file + ":\n" + string.Join("\n", points));
        return placed + 2; // points are numbered from 1: kill at the call after the rename
    }

    /// <summary>Runs <c>race</c> once, when the engine first lists the install directory: at the start of its walk.</summary>
    private sealed class WalkRacingFileOps(IFileOps inner, string installDir, Action race) : FileOpsDecorator(inner)
    {
        public bool Raced { get; private set; }

        public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked)
        {
            if (!Raced && root == installDir && relative.Length == 0)
            {
                Raced = true;
                race();
            }

            return base.ReadDirectory(root, relative, walked);
        }
    }
}
