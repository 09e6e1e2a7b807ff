using Patching.IO;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// A directory of the install (or of the old tree in the trash) replaced by a symlink to an outside folder after the
/// walk: every step is taken relative to a directory opened without following symlinks, so nothing outside is
/// written, linked or deleted, whatever the step.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SymlinkRaceTests
{
    /// <summary>An outside folder holding files with the names (and sizes) of the install's data/ files, other content.</summary>
    private static string Outside(PatchScenario s)
    {
        var outside = s.Dir("outside");
        foreach (var f in Directory.EnumerateFiles(Path.Join(s.OldTree, "data")))
            File.WriteAllBytes(Path.Join(outside, Path.GetFileName(f)), PatchScenario.Bytes("outside " + Path.GetFileName(f), (int)new FileInfo(f).Length));
        return outside;
    }

    [TestCase(CommitStrategy.Layered, "link")]
    [TestCase(CommitStrategy.Layered, "rename")]
    [TestCase(CommitStrategy.Swap, "link")]
    public void Apply_InstallDirectorySwappedForSymlinkDuringCommit_NothingOutsideTouched(CommitStrategy strategy, string call)
    {
        if (!OperatingSystem.IsLinux() && strategy == CommitStrategy.Swap) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("swap-race").WithSmallGame().Install();
        s.BuildPatch();
        var outside = Outside(s);
        var before = HashListing.Of(outside);
        var data = Path.Join(s.InstallDir, "data");
        // Layered "link": backing up an install file; "rename": placing a new file into data/; swap "link": reusing an
        // unchanged install file for the new tree.
        var racing = new SwappingFileOps(FileOps.Instance, call, p => p.StartsWith(data + "/", StringComparison.Ordinal),
            () => SwappingFileOps.ReplaceBySymlink(data, Path.Join(s.Root, "data-moved"), outside));

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy }, null, CancellationToken.None));

        Assert.That(racing.FiredAt, Is.Not.Null, "the race happened");
        // Before the commit the step fails as SymlinkEscape and the transaction is rolled back; in the middle of the
        // layered commit the rollback meets the same symlink and stops too, leaving recovery to the next run.
        Assert.That(ex!.ToString(), Does.Contain("became a symlink"));
        if (call == "link") Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape), ex.ToString());
        Assert.That(HashListing.Of(outside), Is.EqualTo(before), "no outside file written, replaced or deleted");
        foreach (var f in Directory.EnumerateFiles(outside))
            Assert.That(LinkCount(f), Is.EqualTo("1"), $"{f} was linked into a tree");
    }

    /// <summary>A tree <paramref name="name"/>/a/{one,two}, b/three and an outside folder holding other files.</summary>
    private static (string Root, string Outside) WalkedTreeWithOutside(TempDir temp, string name = "tree")
    {
        var root = temp[name];
        var outside = temp[name + "-outside"];
        foreach (var f in new[] { "a/one", "a/two", "b/three" }) TreeFactory.WriteFile(root, f, System.Text.Encoding.UTF8.GetBytes(f));
        foreach (var f in new[] { "secret", "one" }) TreeFactory.WriteFile(outside, f, System.Text.Encoding.UTF8.GetBytes("outside " + f));
        return (root, outside);
    }

    /// <summary>Walks a new tree through <paramref name="fs"/> while a mod tool swaps a/ for a symlink just before it is read.</summary>
    private static List<TreeEntry> WalkWhileASwapped(TempDir temp, string name, IFileOps fs)
    {
        var (root, outside) = WalkedTreeWithOutside(temp, name);
        var a = Path.Join(root, "a");
        var racing = new SwappingFileOps(fs, "read", p => p == a, () => SwappingFileOps.ReplaceBySymlink(a, temp[name + "-a-moved"], outside));
        try
        {
            return TreeOps.Walk(racing, root);
        }
        finally
        {
            Assert.That(racing.FiredAt, Is.EqualTo(a), "the race happened");
        }
    }

    [Test]
    public void Walk_DirectorySwappedForSymlinkWhileWalking_RefusedWithoutListingOutside()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the walk reads directories through handles on Linux");
        using var temp = TempDir.ForCurrentTest();

        var ex = Assert.Throws<PatcherException>(() => WalkWhileASwapped(temp, "handles", FileOps.Instance));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape), ex.ToString());
        // By path, the same race makes the walk report the outside folder's files as the tree's.
        Assert.That(WalkWhileASwapped(temp, "by-path", new ByPathFileOps()).Select(e => e.Path), Does.Contain("a/secret"));
    }

    [Test]
    public void Walk_DirectorySwappedForAnotherDirectoryWhileWalking_Refused()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the walk reads directories through handles on Linux");
        using var temp = TempDir.ForCurrentTest();
        var (root, _) = WalkedTreeWithOutside(temp);
        var a = Path.Join(root, "a");
        var racing = new SwappingFileOps(FileOps.Instance, "read", p => p == a, () =>
        {
            Directory.Move(a, temp["a-moved"]);
            TreeFactory.WriteFile(root, "a/planted", "planted"u8.ToArray());
        });

        var ex = Assert.Throws<PatcherException>(() => TreeOps.Walk(racing, root));

        Assert.That(racing.FiredAt, Is.EqualTo(a), "the race happened");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallEntryReplaced), ex.ToString());
    }

    [TestCase(CommitStrategy.Layered)]
    [TestCase(CommitStrategy.Swap)]
    public void Apply_InstallDirectorySwappedForSymlinkDuringWalk_RefusedAndNothingOutsideTouched(CommitStrategy strategy)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the walk reads directories through handles on Linux");
        using var s = new PatchScenario("walk-race").WithSmallGame().Install();
        s.BuildPatch();
        var outside = Outside(s);
        var before = HashListing.Of(outside);
        var data = Path.Join(s.InstallDir, "data");
        // The outside folder holds files of data/'s names and sizes: walked through the link, they pass for the base.
        var racing = new SwappingFileOps(FileOps.Instance, "read", p => p == data, () => SwappingFileOps.ReplaceBySymlink(data, Path.Join(s.Root, "data-moved"), outside));

        var ex = Assert.Throws<PatcherException>(() =>
            TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy }, null, CancellationToken.None));

        Assert.That(racing.FiredAt, Is.EqualTo(data), "the race happened");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape), ex.ToString());
        Assert.That(HashListing.Of(outside), Is.EqualTo(before), "no outside file written, replaced or deleted");
        foreach (var f in Directory.EnumerateFiles(outside))
            Assert.That(LinkCount(f), Is.EqualTo("1"), $"{f} was linked into a tree");
    }

    /// <summary>The real file system read by path, as every directory was read before directory handles.</summary>
    private sealed class ByPathFileOps() : FileOpsDecorator(FileOps.Instance)
    {
        public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
            TreeOps.ReadDirectoryByPath(this, root, relative);
    }

    [Test]
    public void EmptyTrash_OldTreeDirectorySwappedForSymlink_DeletesTheLinkNotWhatItPointsTo()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("trash-race").WithSmallGame().Install();
        s.BuildPatch();
        var outside = Outside(s);
        var before = HashListing.Of(outside);
        var trash = new StateLayout(s.InstallDir, null).TrashDir;
        string? swapped = null;
        var racing = new SwappingFileOps(FileOps.Instance, "delete", p => p.StartsWith(trash + "/", StringComparison.Ordinal) && p.Contains("/data/", StringComparison.Ordinal),
            () =>
            {
                swapped = Directory.EnumerateDirectories(trash, "data", SearchOption.AllDirectories).First();
                SwappingFileOps.ReplaceBySymlink(swapped, Path.Join(s.Root, "data-moved"), outside);
            });

        var result = TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options, null, CancellationToken.None);

        Assert.That(racing.FiredAt, Is.Not.Null, "the race happened");
        Assert.That(result.ToVersion, Is.EqualTo("2.0.0"));
        Assert.That(HashListing.Of(outside), Is.EqualTo(before), "nothing outside deleted");
        Assert.That(File.Exists(swapped!) || Directory.Exists(swapped!), Is.False, "the symlink itself went with the trash");
    }

    private static string LinkCount(string path)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true })!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return text;
    }
}
