using Patching.IO;

namespace Patching.Tests.IO;

/// <summary>
/// Windows' rule for steps below an install: the root and every component on the way are opened (the entry too where the
/// step would follow it) and held until the step is done, and a junction or symlink among them refuses the step. The
/// order, the holding and the refusal run on any OS with a fake opener; <see cref="WindowsFileOps"/> gives it real
/// handles (opened with FILE_FLAG_OPEN_REPARSE_POINT, shared without delete) and real reparse tags.
/// </summary>
public sealed class ReparsePointTests
{
    private static readonly string Root = Path.Join(Path.GetTempPath(), "reparse-root-" + Guid.NewGuid().ToString("N"));

    [OneTimeSetUp]
    public void ConfineRoot() => FileOps.Confine(Root);

    /// <summary>A handle of the fake file system: which path it holds, and whether it was closed.</summary>
    private sealed class FakeHandle(string path, List<string> closed) : IDisposable
    {
        public string Path { get; } = path;

        public void Dispose() => closed.Add(Path);
    }

    /// <summary>A file system where the given paths are junctions and the missing ones do not exist; records opens and closes.</summary>
    private sealed class Disk(string[] redirecting, string[]? missing = null)
    {
        public List<string> Opened { get; } = [];
        public List<string> Closed { get; } = [];

        public FakeHandle OpenRoot(string root)
        {
            Opened.Add(root);
            return new FakeHandle(root, Closed);
        }

        public List<string> OpenedAsEntry { get; } = [];

        public ReparsePoints.Opened<FakeHandle> Open(string path, bool entry)
        {
            Opened.Add(path);
            if (entry) OpenedAsEntry.Add(path);
            if (missing?.Contains(path) == true) return new(null, new ReparsePoints.Component(false, false));
            return new(new FakeHandle(path, Closed), new ReparsePoints.Component(true, redirecting.Contains(path)));
        }

        public ReparsePoints.Held<FakeHandle> Hold(string path, bool includeLast) => ReparsePoints.Hold<FakeHandle>(path, includeLast, OpenRoot, Open);
    }

    [Test]
    public void Hold_PlainDirectories_HoldsRootAndEachOnTheWayUntilDisposed()
    {
        var disk = new Disk([]);
        var file = Path.Join(Root, "data", "maps", "level1.pak");
        using (var held = disk.Hold(file, includeLast: false))
        {
            Assert.That(disk.Opened, Is.EqualTo(new[] { Root, Path.Join(Root, "data"), Path.Join(Root, "data", "maps") }), "outermost first");
            Assert.That(held.Count, Is.EqualTo(3));
            Assert.That(disk.OpenedAsEntry, Is.Empty, "all of them are directories on the way");
            Assert.That(disk.Closed, Is.Empty, "every handle stays open while the step runs");
        }

        Assert.That(disk.Closed, Is.EqualTo(new[] { Path.Join(Root, "data", "maps"), Path.Join(Root, "data"), Root }), "closed innermost first");
    }

    [Test]
    public void Hold_JunctionOnTheWay_SymlinkEscapeNamingItAndEverythingClosed()
    {
        var junction = Path.Join(Root, "data");
        var disk = new Disk([junction]);

        var ex = Assert.Throws<PatcherException>(() => disk.Hold(Path.Join(junction, "maps", "f"), includeLast: false));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape));
        Assert.That(ex.Message, Does.Contain(junction).And.Contain("reparse point"));
        Assert.That(disk.Opened, Does.Not.Contain(Path.Join(junction, "maps")), "nothing below the junction is opened");
        Assert.That(disk.Closed, Is.EquivalentTo(disk.Opened), "every handle opened is closed again");
    }

    [Test]
    public void Hold_OutermostOfSeveral_NamedFirst()
    {
        var outer = Path.Join(Root, "a");
        var inner = Path.Join(Root, "a", "b");
        var ex = Assert.Throws<PatcherException>(() => new Disk([inner, outer]).Hold(Path.Join(inner, "f"), includeLast: false));
        Assert.That(ex!.Message, Does.StartWith($"'{outer}'"));
    }

    [Test]
    public void Hold_LastComponentIsLink_RefusedOnlyWhenIncluded()
    {
        var link = Path.Join(Root, "data", "level1.pak");
        using (var held = new Disk([link]).Hold(link, includeLast: false))
            Assert.That(held.Count, Is.EqualTo(2), "deleting or renaming a link acts on the link: only the root and data/ are held");
        var disk = new Disk([link]);
        Assert.Throws<PatcherException>(() => disk.Hold(link, includeLast: true), "opening it would follow it");
        Assert.That(disk.OpenedAsEntry, Is.EqualTo(new[] { link }), "the opener is told which component is the entry itself");
    }

    [Test]
    public void Hold_RootItself_HoldsNothing()
    {
        var disk = new Disk([Root]);
        using var held = disk.Hold(Root, includeLast: true);
        Assert.That(disk.Opened, Is.Empty, "a held root could not be removed by the step itself; it is the user's choice");
    }

    [Test]
    public void Hold_EntryDirectlyBelowRoot_HoldsTheRootOnly()
    {
        var disk = new Disk([Root]);
        using var held = disk.Hold(Path.Join(Root, "f"), includeLast: false);
        Assert.That(disk.Opened, Is.EqualTo(new[] { Root }), "the root is held (never checked: the user may install through a link)");
    }

    [Test]
    public void Hold_PathBelowNoConfinedRoot_OpensNothing()
    {
        var elsewhere = Path.Join(Path.GetTempPath(), "not-confined-" + Guid.NewGuid().ToString("N"), "data");
        var disk = new Disk([elsewhere]);
        using var held = disk.Hold(Path.Join(elsewhere, "f"), includeLast: true);
        Assert.That(disk.Opened, Is.Empty);
    }

    [Test]
    public void Hold_MissingComponent_StopsThereAndHoldsWhatExists()
    {
        var missing = Path.Join(Root, "gone");
        var below = Path.Join(missing, "link");
        var disk = new Disk([below], [missing]);

        using var held = disk.Hold(Path.Join(below, "f"), includeLast: true);

        Assert.That(disk.Opened, Is.EqualTo(new[] { Root, missing }), "nothing below a missing directory is asked about: the step reports it");
        Assert.That(held.Count, Is.EqualTo(1));
    }

    // Tags as Windows defines them (winnt.h): name surrogates redirect, the others are data kept elsewhere.
    [TestCase(0x400u, 0xA0000003u, true, TestName = "Redirects_Junction_True")]
    [TestCase(0x400u, 0xA000000Cu, true, TestName = "Redirects_Symlink_True")]
    [TestCase(0x400u, 0xA000001Du, true, TestName = "Redirects_WslSymlink_True")]
    [TestCase(0x410u, 0xA0000003u, true, TestName = "Redirects_DirectoryJunction_True")]
    [TestCase(0x400u, 0x9000001Au, false, TestName = "Redirects_CloudPlaceholder_False")]
    [TestCase(0x400u, 0x80000013u, false, TestName = "Redirects_Deduplicated_False")]
    [TestCase(0x10u, 0xA0000003u, false, TestName = "Redirects_NoReparseAttribute_False")]
    [TestCase(0x80u, 0u, false, TestName = "Redirects_PlainFile_False")]
    public void Redirects_Tag_Decides(uint attributes, uint tag, bool expected) =>
        Assert.That(ReparsePoints.Redirects(attributes, tag), Is.EqualTo(expected));
}
