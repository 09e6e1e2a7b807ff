using Patching.IO;
using Patching.State;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// Case sensitivity is a property of the install's volume, not of the operating system: Linux mounts exFAT and FAT
/// volumes that ignore case. A player's file named like a file the new version adds, but for case, is that file's
/// entry there, and must never replace it.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CaseInsensitiveVolumeTests
{
    [Test]
    public void IgnoresCase_ProbedOnTheVolume_AnswersForTheVolumeNotTheSystem()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the test's real volume must be case-sensitive (Linux)");
        using var temp = TempDir.ForCurrentTest();
        var dir = temp.Dir("install");
        PatchScenario.Write(dir, "Game.exe", "engine");

        Assert.That(VolumeCase.IgnoresCase(FileOps.Instance, dir), Is.False, "ext4/tmpfs compare names exactly");
        Assert.That(VolumeCase.IgnoresCase(new CaseInsensitiveFileOps(FileOps.Instance, temp.Path), dir), Is.True, "an exFAT-like volume ignores case");
        Assert.That(Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName), Is.EqualTo(new[] { "Game.exe" }), "the probe creates nothing");
    }

    [Test]
    public void IgnoresCase_NameAndItsOtherCaseBothPresent_CaseSensitive()
    {
        using var temp = TempDir.ForCurrentTest();
        var dir = temp.Dir("install");
        PatchScenario.Write(dir, "readme", "one");
        PatchScenario.Write(dir, "README", "two");

        Assert.That(VolumeCase.IgnoresCase(new NoInodeFileOps(), dir), Is.False, "two entries: the volume tells the spellings apart");
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_PlayerFileDifferingOnlyInCaseOnCaseInsensitiveVolume_NewVersionFileInstalledAndPlayersKept(CommitStrategy strategy)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the fake case-insensitive volume sits on a case-sensitive one (Linux)");
        using var s = new PatchScenario("case-volume").WithSmallGame().Install();
        s.BuildPatch();
        // The new version adds docs/guide.txt; the player has a newer docs/GUIDE.TXT of their own. On exFAT both names
        // are one entry: before the probe, apply returned success with the player's bytes as the new version's file.
        PatchScenario.Write(s.InstallDir, "docs/GUIDE.TXT", "the player's own guide");
        File.SetLastWriteTimeUtc(Path.Join(s.InstallDir, "docs", "GUIDE.TXT"), DateTime.UtcNow.AddHours(1));
        var exfat = new CaseInsensitiveFileOps(FileOps.Instance, s.Root);

        var result = TransactionEngine.Apply(new EngineSettings(exfat), s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy }, null, CancellationToken.None);
        result.Cleanup.GetAwaiter().GetResult();

        var guide = Directory.EnumerateFiles(Path.Join(s.InstallDir, "docs")).Single(f => string.Equals(Path.GetFileName(f), "guide.txt", StringComparison.OrdinalIgnoreCase));
        Assert.That(File.ReadAllText(guide), Is.EqualTo("manual"), "the new version's file");
        var preserved = Path.Join(new StateLayout(s.InstallDir, null).PreservedDir(result.TransactionId!), "docs");
        Assert.That(Directory.EnumerateFiles(preserved).Select(File.ReadAllText), Is.EqualTo(new[] { "the player's own guide" }), "the player's file kept aside");
    }

    /// <summary>
    /// An old tree a program kept using after the exchange holds a file the player saved there, named like a file of the
    /// new version but for case. When the next Recover sweeps it on a volume that ignores case, that is the new version's
    /// entry: the player's file is kept aside, never moved over the new version's file.
    /// </summary>
    [Test]
    public void Recover_KeptOldTreeHoldsPlayerFileDifferingOnlyInCaseOnCaseInsensitiveVolume_NewVersionFileKeptAndPlayersAside()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the fake case-insensitive volume sits on a case-sensitive one (Linux)");
        using var s = new PatchScenario("case-in-use").WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });
        // The old tree as a running program kept it (in-use/<tx>, with the list of what the old version owned), where the
        // program saved docs/GUIDE.TXT after the exchange.
        var layout = new StateLayout(s.InstallDir, null);
        const string tx = "20260101000000-0badc0de";
        var kept = Path.Join(layout.InUseDir, tx);
        PatchScenario.CopyTree(s.OldTree, kept);
        var owned = Directory.EnumerateFileSystemEntries(s.OldTree, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(s.OldTree, p).Replace('\\', '/'));
        File.WriteAllText(Path.Join(layout.InUseDir, tx + ".owned"), string.Join('\n', owned));
        PatchScenario.Write(kept, "docs/GUIDE.TXT", "the player's own guide");
        File.SetLastWriteTimeUtc(Path.Join(kept, "docs", "GUIDE.TXT"), DateTime.UtcNow.AddHours(1));
        var exfat = new CaseInsensitiveFileOps(FileOps.Instance, s.Root);

        var result = TransactionEngine.Recover(new EngineSettings(exfat), s.InstallDir, s.Options);
        result.Cleanup.GetAwaiter().GetResult();

        Assert.That(Directory.Exists(layout.InUseDir), Is.False, "nobody uses the old tree: released");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "the new version exactly, docs/guide.txt included");
        Assert.That(File.ReadAllText(Path.Join(layout.PreservedDir(tx), "docs", "GUIDE.TXT")), Is.EqualTo("the player's own guide"), "the player's file kept aside");
    }
}
