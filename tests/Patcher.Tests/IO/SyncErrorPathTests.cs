using Patching.IO;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.IO;

/// <summary>
/// Files below the install and the state directory are opened from handles (relative to a held directory, without
/// following a link); a stream made from a handle has no name of its own, so the seam carries the path into the errors.
/// </summary>
public sealed class SyncErrorPathTests
{
    [Test]
    public void Sync_FileOpenedBeneathAConfinedRootRefusesIt_ErrorNamesTheFile()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("a FIFO that fsync refuses (EINVAL) is made with mkfifo (Linux)");
        using var temp = TempDir.ForCurrentTest();
        var root = temp.Dir("install");
        ConfinedRoots.Add(root);
        var fifo = Path.Join(root, "pipe");
        PlantedState.Run("mkfifo", fifo);
        using var stream = FileOps.Instance.OpenRead(fifo);

        var ex = Assert.Throws<PatcherException>(() => FileOps.Instance.Sync(stream));

        Assert.That(ex!.Path, Is.EqualTo(fifo));
        Assert.That(ex.Message, Does.Contain(fifo).And.Not.Contain("[Unknown]"));
    }

    [Test]
    public void CreateAndOpenRead_BeneathAConfinedRoot_StreamKnowsItsPath()
    {
        using var temp = TempDir.ForCurrentTest();
        var root = temp.Dir("install");
        ConfinedRoots.Add(root);
        var path = Path.Join(root, "data", "level1.pak");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);

        using (var created = (FileStream)FileOps.Instance.Create(path))
        {
            if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows()) Assert.That(created, Is.InstanceOf<NamedFileStream>(), "opened from a handle beneath the root");
            Assert.That(NamedFileStream.PathOf(created), Is.EqualTo(path));
            created.Write([1, 2, 3]);
            FileOps.Instance.Sync(created);
        }

        using var read = (FileStream)FileOps.Instance.OpenRead(path);
        Assert.That(NamedFileStream.PathOf(read), Is.EqualTo(path));
    }
}
