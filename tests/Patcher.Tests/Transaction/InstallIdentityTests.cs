using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Transaction;

/// <summary>
/// The journal knows which install directory it describes. A player who deletes the install and copies the old version
/// back (or restores a backup) gets an install Patcher treats as unknown: Status does not claim the journal's version,
/// and the patch from the restored version applies after its base is checked by hash. A move of the install with its
/// state directory keeps the journal's knowledge.
/// </summary>
public sealed class InstallIdentityTests
{
    private static void Reinstall(PatchScenario s, string tree)
    {
        Directory.Delete(s.InstallDir, recursive: true);
        PatchScenario.CopyTree(tree, s.InstallDir);
    }

    /// <summary>The small game updated 1.0.0 → 2.0.0 by Patcher, then deleted and 1.0.0 copied back, as a reinstall does.</summary>
    private static PatchScenario UpdatedThenReinstalled(CommitStrategy strategy = CommitStrategy.Auto)
    {
        var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });
        Reinstall(s, s.OldTree);
        return s;
    }

    /// <summary>Version 3.0.0 (2.0.0 plus a file) and the patch 2.0.0 → 3.0.0; returns the tree and the patch directory.</summary>
    private static (string Tree, string Patch) NextVersion(PatchScenario s)
    {
        var v3 = s.Dir("v3");
        PatchScenario.CopyTree(s.NewTree, v3);
        PatchScenario.Write(v3, "data/level4.pak", "new in 3");
        var next = Path.Join(s.Root, "patch-3");
        s.BuildPatch("3.0.0", "2.0.0", next, s.NewTree, v3);
        return (v3, next);
    }

    [TestCase(CommitStrategy.Auto)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_InstallDeletedAndOldVersionCopiedBack_AppliesTheSamePatchAgain(CommitStrategy strategy)
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        var options = s.Options with { Strategy = strategy };
        Patcher.Apply(s.InstallDir, s.PatchDir, options);
        Reinstall(s, s.OldTree);

        // Before the journal knew its install, this was NotNewer (141): "version 2.0.0 is not newer than the installed 2.0.0".
        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(Patcher.Status(s.InstallDir).InstalledVersion, Is.EqualTo("2.0.0"));
        Assert.That(Patcher.Verify(s.InstallDir).IsIntact, Is.True);
    }

    [Test]
    public void Status_InstallDeletedAndCopiedBack_ReportsUnknownInstall()
    {
        using var s = UpdatedThenReinstalled();

        var status = Patcher.Status(s.InstallDir);

        Assert.That(status.InstalledVersion, Is.Null);
        Assert.That(status.Product, Is.Null);
        Assert.That(status.ReplacedInstallVersion, Is.EqualTo("2.0.0"));
    }

    [Test]
    public void Cli_StatusOfReinstalledInstall_SaysUnknownNotTheJournalsVersion()
    {
        using var s = UpdatedThenReinstalled();

        var text = CliRunner.Expect(0, "status", "--target", s.InstallDir);
        var json = CliRunner.Expect(0, "status", "--target", s.InstallDir, "--json").Json();

        Assert.That(text.Out, Does.Contain("version      (unknown: this is not the directory Patcher installed 2.0.0 in"));
        Assert.That(json.GetProperty("installedVersion").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
        Assert.That(json.GetProperty("replacedInstallVersion").GetString(), Is.EqualTo("2.0.0"));
    }

    [Test]
    public void Apply_ReplacedInstallWithSameSizedDifferentBase_FailsBaseMismatchAndChangesNothing()
    {
        using var s = UpdatedThenReinstalled();
        // Same size, other bytes: a size check would reuse it; the base is checked by hash for an unknown install.
        var reused = Path.Join(s.InstallDir, "data", "level1.pak");
        var bytes = File.ReadAllBytes(reused);
        bytes[100] ^= 0xFF;
        File.WriteAllBytes(reused, bytes);
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_InstallMovedWithItsStateDirectory_KeepsVersionAndTakesNextPatch()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        var (v3, next) = NextVersion(s);
        var movedParent = Path.Join(s.Root, "moved");
        Directory.Move(s.ParentDir, movedParent);
        var moved = Path.Join(movedParent, "game");

        var status = Patcher.Status(moved);
        Patcher.Apply(moved, next, s.Options);

        Assert.That(status.InstalledVersion, Is.EqualTo("2.0.0"));
        Assert.That(status.ReplacedInstallVersion, Is.Null);
        Assert.That(PatchScenario.Listing(moved), Is.EqualTo(PatchScenario.Listing(v3)));
    }

    [Test]
    public void Apply_NoInodesReported_RecognisesTheInstallByItsMarkerAndKeepsTheMarkerOutOfEveryPlan()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        var engine = new EngineSettings(new NoInodeFileOps());
        var options = s.Options with { Strategy = CommitStrategy.Layered };
        var marker = Path.Join(s.InstallDir, PathRules.InstallMarkerName);

        TransactionEngine.Apply(engine, s.InstallDir, s.PatchDir, options, null, CancellationToken.None);

        Assert.That(File.Exists(marker), Is.True, "the identity lives in a marker where there are no inodes");
        Assert.That(PatchScenario.Listing(s.InstallDir, rel => rel == PathRules.InstallMarkerName), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(TransactionEngine.Status(engine, s.InstallDir, options).InstalledVersion, Is.EqualTo("2.0.0"));

        // The next update: the marker is neither a file of a version nor the player's, and stays as it is.
        var (v3, next) = NextVersion(s);
        var id = File.ReadAllText(marker);
        var plan = ApplyPlan(engine, s, next);
        Assert.That(plan.UserEntries.Select(e => e.Path), Does.Not.Contain(PathRules.InstallMarkerName));
        Assert.That(plan.InstallEntries!.Select(e => e.Path), Does.Not.Contain(PathRules.InstallMarkerName));
        TransactionEngine.Apply(engine, s.InstallDir, next, options, null, CancellationToken.None);
        Assert.That(File.ReadAllText(marker), Is.EqualTo(id));
        Assert.That(PatchScenario.Listing(s.InstallDir, rel => rel == PathRules.InstallMarkerName), Is.EqualTo(PatchScenario.Listing(v3)));
        Assert.That(Directory.EnumerateDirectories(Path.Join(s.ParentDir, ".game.patcher"), "preserved-*"), Is.Empty, "the marker was not set aside as a player's file");

        // Deleted and copied back: the marker went with the old directory.
        Reinstall(s, v3);
        Assert.That(TransactionEngine.Status(engine, s.InstallDir, options).ReplacedInstallVersion, Is.EqualTo("3.0.0"));
    }

    private static Patching.Staging.ApplyPlan ApplyPlan(EngineSettings engine, PatchScenario s, string patch)
    {
        var manifest = ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(patch, ManifestCodec.ManifestFileName)));
        return Patching.Staging.ApplyPlan.Create(engine.FileSystem, new Patching.Staging.PlanInput(s.InstallDir, manifest, null) { FullHash = false }, null, CancellationToken.None);
    }

    [Test]
    public void Read_DirectoryDeletedAndMadeAgainAtItsPath_HasAnotherIdentity()
    {
        // ext4 gives the new directory the old one's inode number at once; the birth time tells them apart.
        using var temp = TempDir.ForCurrentTest();
        var dir = temp["game"];
        var seen = new List<string?>();
        for (var i = 0; i < 3; i++)
        {
            Directory.CreateDirectory(dir);
            seen.Add(InstallIdentity.Read(FileOps.Instance, dir));
            Directory.Delete(dir);
        }

        Assert.That(seen, Is.Unique);
        Assert.That(seen, Has.None.Null);
    }

    [Test]
    public void Build_TreeHoldingAnInstallMarker_LeavesItOut()
    {
        using var s = new PatchScenario().WithSmallGame();
        PatchScenario.Write(s.NewTree, PathRules.InstallMarkerName, "0123456789abcdef");

        var result = s.BuildPatch();

        var manifest = ManifestCodec.Deserialize(File.ReadAllBytes(result.ManifestPath));
        Assert.That(manifest.Files.Select(f => f.Path), Does.Not.Contain(PathRules.InstallMarkerName));
    }

    [TestCase(".patcher-install")]
    [TestCase(".PATCHER-INSTALL")]
    [TestCase(".patcher-install/x")]
    public void PathRules_InstallMarkerName_IsReserved(string path)
    {
        Assert.That(PathRules.Check(path), Does.Contain("which install this is"));
    }
}
