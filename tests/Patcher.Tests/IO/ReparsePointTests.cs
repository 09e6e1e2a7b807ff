using Patching.IO;

namespace Patching.Tests.IO;

/// <summary>
/// Windows' rule for steps below an install: no junction or symlink on the way (and none as the entry an open would
/// follow). The decision runs on any OS with the file system's answers given; the Windows calls feed it real ones.
/// </summary>
public sealed class ReparsePointTests
{
    private static readonly string Root = Path.Join(Path.GetTempPath(), "reparse-root-" + Guid.NewGuid().ToString("N"));

    [OneTimeSetUp]
    public void ConfineRoot() => FileOps.Confine(Root);

    private static Func<string, ReparsePoints.Component> Disk(params string[] redirecting) =>
        p => new ReparsePoints.Component(true, redirecting.Contains(p));

    [Test]
    public void FirstRedirect_JunctionOnTheWay_NamesIt()
    {
        var junction = Path.Join(Root, "data");
        Assert.That(ReparsePoints.FirstRedirect(Path.Join(junction, "level1.pak"), includeLast: false, Disk(junction)), Is.EqualTo(junction));
    }

    [Test]
    public void FirstRedirect_OutermostOfSeveral_NamedFirst()
    {
        var outer = Path.Join(Root, "a");
        var inner = Path.Join(Root, "a", "b");
        Assert.That(ReparsePoints.FirstRedirect(Path.Join(inner, "f"), includeLast: false, Disk(inner, outer)), Is.EqualTo(outer));
    }

    [Test]
    public void FirstRedirect_LastComponentIsLink_OnlyWhenIncluded()
    {
        var link = Path.Join(Root, "data", "level1.pak");
        Assert.That(ReparsePoints.FirstRedirect(link, includeLast: false, Disk(link)), Is.Null, "deleting or renaming a link acts on the link");
        Assert.That(ReparsePoints.FirstRedirect(link, includeLast: true, Disk(link)), Is.EqualTo(link), "opening it would follow it");
    }

    [Test]
    public void FirstRedirect_NoReparsePoint_Null() =>
        Assert.That(ReparsePoints.FirstRedirect(Path.Join(Root, "data", "x", "f"), includeLast: true, Disk()), Is.Null);

    [Test]
    public void FirstRedirect_RootItselfOrAbove_NotChecked()
    {
        Assert.That(ReparsePoints.FirstRedirect(Path.Join(Root, "f"), includeLast: false, Disk(Root)), Is.Null,
            "the directories above and at an install are the user's choice");
    }

    [Test]
    public void FirstRedirect_PathBelowNoConfinedRoot_NotChecked()
    {
        var elsewhere = Path.Join(Path.GetTempPath(), "not-confined-" + Guid.NewGuid().ToString("N"), "data");
        Assert.That(ReparsePoints.FirstRedirect(Path.Join(elsewhere, "f"), includeLast: true, Disk(elsewhere)), Is.Null);
    }

    [Test]
    public void FirstRedirect_MissingComponent_StopsThere()
    {
        var missing = Path.Join(Root, "gone");
        var below = Path.Join(missing, "link");
        var inspected = new List<string>();
        ReparsePoints.Component Inspect(string p)
        {
            inspected.Add(p);
            return new ReparsePoints.Component(p != missing, p == below);
        }

        Assert.That(ReparsePoints.FirstRedirect(Path.Join(below, "f"), includeLast: true, Inspect), Is.Null);
        Assert.That(inspected, Is.EqualTo(new[] { missing }), "nothing below a missing directory is asked about");
    }

    [Test]
    public void Refuse_JunctionOnTheWay_SymlinkEscapeNamingIt()
    {
        var junction = Path.Join(Root, "data");
        var ex = Assert.Throws<PatcherException>(() => ReparsePoints.Refuse(Path.Join(junction, "f"), includeLast: false, Disk(junction)));
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape));
        Assert.That(ex.Message, Does.Contain(junction).And.Contain("reparse point"));
    }
}
