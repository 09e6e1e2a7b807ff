using Patching.IO;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// A directory of the install replaced by another real directory (moved in by a process of the player, holding
/// look-alike files) after the plan's walk: the layered commit's steps compare every directory on their way with the
/// walk's identities, so the step fails instead of backing up, moving aside or placing files in the planted directory.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DirectoryReplacedTests
{
    /// <summary>The step kinds of the layered commit, each with the seam call it starts with and where it acts.</summary>
    [TestCase("link", "install", TestName = "Apply_DataDirectoryReplacedBeforeBackup_StepRefusedAndPlantedDirectoryUntouched")]
    [TestCase("rename", "backup", TestName = "Apply_DataDirectoryReplacedBeforeMoveAside_StepRefusedAndPlantedDirectoryUntouched")]
    [TestCase("rename", "install", TestName = "Apply_DataDirectoryReplacedBeforePlacement_StepRefusedAndPlantedDirectoryUntouched")]
    public void Apply_DataDirectoryReplacedDuringLayeredCommit_StepRefusedAndPlantedDirectoryUntouched(string call, string where)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("directory identities are compared on Linux");
        using var s = new PatchScenario("dir-replaced").WithSmallGame().Install();
        s.BuildPatch();
        // The player's own data/level3.pak, where the new version adds one: the layered commit moves it aside.
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var data = Path.Join(s.InstallDir, "data");
        var moved = Path.Join(s.Root, "data-moved");
        var original = HashListing.Of(data);
        IReadOnlyList<string>? planted = null;
        Func<string, bool> at = where == "install"
            ? p => p.StartsWith(data + "/", StringComparison.Ordinal)
            : p => p.Contains("/backup-", StringComparison.Ordinal);
        var racing = new SwappingFileOps(FileOps.Instance, call, at, () =>
        {
            Directory.Move(data, moved);
            foreach (var f in Directory.EnumerateFiles(moved)) PatchScenario.Write(s.InstallDir, "data/" + Path.GetFileName(f), "planted " + Path.GetFileName(f));
            planted = HashListing.Of(data);
        });

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Layered }, null, CancellationToken.None));

        Assert.That(racing.FiredAt, Is.Not.Null, "the race happened");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallEntryReplaced), ex.ToString());
        Assert.That(HashListing.Of(data), Is.EqualTo(planted), "nothing placed in, moved out of or linked from the planted directory");
        // Steps before the race moved old and player's files aside into the backup area; nothing else left it, and nothing came in.
        Assert.That(HashListing.Of(moved), Is.SubsetOf(original), "the directory moved out of the install gained or changed nothing");
    }
}
