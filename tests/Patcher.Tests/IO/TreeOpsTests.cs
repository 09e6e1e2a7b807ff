using Patching.IO;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.IO;

public sealed class TreeOpsTests
{
    /// <summary>The walk as it was before directories were read in parallel: one directory at a time, from a stack.</summary>
    private static List<TreeEntry> OneDirectoryAtATime(string root)
    {
        var result = new List<TreeEntry>();
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            var rel = pending.Pop();
            var names = FileOps.Instance.ListNames(rel.Length == 0 ? root : PathRules.Join(root, rel)).ToList();
            names.Sort(StringComparer.Ordinal);
            foreach (var name in names)
            {
                var childRel = rel.Length == 0 ? name : rel + "/" + name;
                var info = FileOps.Instance.Stat(PathRules.Join(root, childRel));
                result.Add(new TreeEntry(childRel, info));
                if (info.Kind == EntryKind.Directory) pending.Push(childRel);
            }
        }

        return result;
    }

    [Test]
    public void Walk_ManyDirectoriesAtSeveralLevels_SameEntriesInTheSameOrderAsOneDirectoryAtATime()
    {
        using var temp = TempDir.ForCurrentTest();
        var root = temp["tree"];
        for (var a = 0; a < 6; a++)
        for (var b = 0; b < 5; b++)
        {
            var dir = Path.Join(root, $"g{a}", $"d{b}", b % 2 == 0 ? "deep" : "");
            Directory.CreateDirectory(dir);
            for (var f = 0; f < 4; f++) File.WriteAllText(Path.Join(dir, $"f{f}.txt"), new string('x', a + b + f));
        }

        Directory.CreateDirectory(Path.Join(root, "empty"));
        File.WriteAllText(Path.Join(root, "top.txt"), "t");

        var walked = TreeOps.Walk(FileOps.Instance, root);

        Assert.That(walked, Is.EqualTo(OneDirectoryAtATime(root)));
        Assert.That(walked, Has.Count.EqualTo(1 + 1 + 6 + 30 + 18 + 120));
    }

    [Test]
    public void Walk_ExcludedDirectory_NeitherListedNorEntered()
    {
        using var temp = TempDir.ForCurrentTest();
        var root = temp["tree"];
        Directory.CreateDirectory(Path.Join(root, "keep", "inner"));
        Directory.CreateDirectory(Path.Join(root, "skip", "inner"));
        File.WriteAllText(Path.Join(root, "skip", "inner", "f.txt"), "x");

        var walked = TreeOps.Walk(FileOps.Instance, root, rel => rel == "skip");

        Assert.That(walked.Select(e => e.Path), Is.EqualTo(new[] { "keep", "keep/inner" }));
    }

    /// <summary>
    /// Two directories of one level cannot be read; the later one fails first. The failure reported must be the first
    /// directory's, as reading them one at a time would report it: before, it was whichever failed first.
    /// </summary>
    [Test]
    public void Walk_TwoDirectoriesOfOneLevelUnreadable_ReportsTheFirstInOrder()
    {
        using var temp = TempDir.ForCurrentTest();
        var root = temp["tree"];
        foreach (var d in new[] { "a", "b", "c" }) Directory.CreateDirectory(Path.Join(root, d, "inner"));
        var fs = new UnreadableFileOps(FileOps.Instance, failSlowly: Path.Join(root, "a"), failAtOnce: Path.Join(root, "c"));

        var ex = Assert.Throws<PatcherException>(() => TreeOps.Walk(fs, root));

        Assert.That(ex!.Path, Is.EqualTo(Path.Join(root, "a")));
    }

    /// <summary>Listing one directory fails after a pause, listing another fails at once.</summary>
    private sealed class UnreadableFileOps(IFileOps inner, string failSlowly, string failAtOnce) : FileOpsDecorator(inner)
    {
        public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked)
        {
            var directory = relative.Length == 0 ? root : RelativePath.Join(root, relative);
            if (directory == failSlowly) Thread.Sleep(200);
            if (directory == failSlowly || directory == failAtOnce)
                throw new PatcherException(PatchErrorCode.AccessDenied, "cannot list (test)", directory);
            return base.ReadDirectory(root, relative, walked);
        }
    }
}
