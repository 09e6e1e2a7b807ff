using Patching.IO;

namespace Patching.Tests.IO;

/// <summary>
/// The Win32 side of the held way to a step (<see cref="WindowsFileOps"/>): directories on the way opened with
/// FILE_FLAG_OPEN_REPARSE_POINT, checked on the handle, and held without delete sharing while the step runs. Only Windows
/// can run these; elsewhere <see cref="ReparsePointTests"/> covers the decision and the Wine scenarios the calls.
/// </summary>
[Platform("Win", Reason = "WindowsFileOps calls Win32; on Linux ReparsePointTests and the Wine scenarios cover it")]
[System.Runtime.Versioning.SupportedOSPlatform("windows")]
public sealed class WindowsFileOpsTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot()
    {
        _root = Path.Join(Path.GetTempPath(), "winops-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Join(_root, "install", "data"));
        File.WriteAllText(Path.Join(_root, "install", "data", "f"), "install");
        Directory.CreateDirectory(Path.Join(_root, "outside"));
        File.WriteAllText(Path.Join(_root, "outside", "f"), "outside");
        FileOps.Confine(Path.Join(_root, "install"));
    }

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    [Test]
    public void Rename_DirectoryOnTheWayRenamedDuringTheStep_RefusedAndStepLandsInside()
    {
        var data = Path.Join(_root, "install", "data");
        Exception? attempt = null;
        var fs = new WindowsFileOps(_ =>
        {
            try
            {
                Directory.Move(data, Path.Join(_root, "data-moved"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                attempt = ex;
            }
        });

        fs.Rename(Path.Join(data, "f"), Path.Join(data, "g"));

        Assert.That(attempt, Is.Not.Null, "the held directory could not be renamed while the step ran");
        Assert.That(File.ReadAllText(Path.Join(data, "g")), Is.EqualTo("install"));
        Assert.That(Directory.Exists(Path.Join(_root, "data-moved")), Is.False);
    }

    [Test]
    public void Create_DirectorySymlinkOnTheWay_SymlinkEscapeAndNothingWrittenOutside()
    {
        var link = Path.Join(_root, "install", "linked");
        try
        {
            Directory.CreateSymbolicLink(link, Path.Join(_root, "outside"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Assert.Ignore("creating symlinks needs privileges or developer mode on Windows: " + ex.Message);
        }

        var ex2 = Assert.Throws<PatcherException>(() => new WindowsFileOps().Create(Path.Join(link, "new")).Dispose());

        Assert.That(ex2!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape));
        Assert.That(File.Exists(Path.Join(_root, "outside", "new")), Is.False);
    }
}
