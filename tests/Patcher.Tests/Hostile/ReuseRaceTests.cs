using Patching.IO;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// A file the swap reuses from the install (hard-linked into the new tree) must be exactly the file the plan examined:
/// a directory on the way swapped for another directory, or the file swapped for another of the same name and size,
/// between the walk and the link, is refused, and nothing of what was swapped in reaches the new tree.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ReuseRaceTests
{
    [Test]
    public void Apply_DirectorySwappedForAnotherBeforeReuseLink_RefusedAndNothingLinked()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy and file identities need Linux");
        using var s = new PatchScenario("reuse-dir-race").WithSmallGame().Install();
        s.BuildPatch();
        var data = Path.Join(s.InstallDir, "data");
        // Another directory holding files with the names and sizes of data/'s, other content: what a process of the
        // player (or another user with write access to the folder) moves into place.
        var other = s.Dir("other-data");
        foreach (var f in Directory.EnumerateFiles(data))
            File.WriteAllBytes(Path.Join(other, Path.GetFileName(f)), PatchScenario.Bytes("planted " + Path.GetFileName(f), (int)new FileInfo(f).Length));
        var planted = HashListing.Of(other);
        var racing = new SwappingFileOps(FileOps.Instance, "link", p => p.StartsWith(data + "/", StringComparison.Ordinal), () =>
        {
            Directory.Move(data, Path.Join(s.Root, "data-moved"));
            Directory.Move(other, data);
        });

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap }, null, CancellationToken.None));

        Assert.That(racing.FiredAt, Is.Not.Null, "the race happened");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallEntryReplaced), ex.ToString());
        Assert.That(ex.Message, Does.Contain("'data'"), "the message names the swapped directory");
        Assert.That(HashListing.Of(data), Is.EqualTo(planted), "the planted files are left as they were");
        foreach (var f in Directory.EnumerateFiles(data))
            Assert.That(FileOps.Instance.Stat(f).Kind, Is.EqualTo(EntryKind.File));
        Assert.That(LinkCount(Path.Join(data, "level1.pak")), Is.EqualTo(1), "the planted file was not linked into a tree");
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "game.exe")), Is.EqualTo("engine v1"), "the old version stays installed");
    }

    [Test]
    public void Apply_ReusedFileSwappedForSameSizeFileBeforeLink_RefusedAndNothingLinked()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy and file identities need Linux");
        using var s = new PatchScenario("reuse-file-race").WithSmallGame().Install();
        s.BuildPatch();
        var level1 = Path.Join(s.InstallDir, "data", "level1.pak");
        var plantedBytes = PatchScenario.Bytes("planted level1", (int)new FileInfo(level1).Length);
        var racing = new SwappingFileOps(FileOps.Instance, "link", p => p == level1, () =>
        {
            File.Move(level1, Path.Join(s.Root, "level1-moved.pak"));
            File.WriteAllBytes(level1, plantedBytes);
        });

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap }, null, CancellationToken.None));

        Assert.That(racing.FiredAt, Is.EqualTo(level1), "the race happened at the reuse of level1.pak");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallEntryReplaced), ex.ToString());
        Assert.That(File.ReadAllBytes(level1), Is.EqualTo(plantedBytes));
        Assert.That(LinkCount(level1), Is.EqualTo(1), "the planted file was not linked into the new tree");
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "game.exe")), Is.EqualTo("engine v1"), "the old version stays installed");
    }

    private static long LinkCount(string path)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true })!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return long.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
    }
}
