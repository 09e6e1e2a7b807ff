using System.Diagnostics;
using Patching.IO;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.IO;

/// <summary>
/// The read-lease probe that tells whether anyone has a blob open for writing (LinkPatchBlobs). A writer that opens the
/// file while the lease is held breaks it, and the kernel signals the holder: this process must survive that.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LeaseProbeTests
{
    [Test]
    public void NoWriters_WriterOpensWhileLeased_ThisProcessSurvivesAndTheWriterProceeds()
    {
        using var temp = TempDir.ForCurrentTest();
        var path = temp["blob"];
        using var handle = OpenForReading(path);
        Process? writer = null;

        // With the kernel's default lease-break signal (SIGIO) this test host would be killed here.
        var free = FileOps.NoWriters(handle, () =>
        {
            writer = Process.Start("sh", ["-c", $"printf more >> '{path}'"]);
            Thread.Sleep(500);
            Assert.That(writer.HasExited, Is.False, "the writer's open waits for the lease to be released");
        });

        Assert.That(free, Is.True);
        Assert.That(writer!.WaitForExit(TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(File.ReadAllText(path), Is.EqualTo("datamore"));
    }

    [Test]
    public void NoWriters_FileOpenForWriting_IsFalse()
    {
        using var temp = TempDir.ForCurrentTest();
        var path = temp["blob"];
        using var handle = OpenForReading(path);
        using (new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            Assert.That(FileOps.NoWriters(handle), Is.False);
        Assert.That(FileOps.NoWriters(handle), Is.True, "once the writer closed it");
    }

    /// <summary>Writes a small file and opens it read-only, as a blob is opened before the probe.</summary>
    private static Microsoft.Win32.SafeHandles.SafeFileHandle OpenForReading(string path)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("file leases are Linux");
        File.WriteAllText(path, "data");
        return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
    }
}
