using Patching.Manifests;
using Patching.IO;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// Every file of a patch is opened as a regular file without blocking: a FIFO, a symlink loop or a directory where a
/// manifest, signature or blob should be is a 1xx refusal that leaves nothing behind, and never hangs.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PatchFileTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static void MakeFifo(string path)
    {
        File.Delete(path);
        PlantedState.Run("mkfifo", path);
    }

    /// <summary>Runs the apply on a worker so that a hang fails the test instead of stopping the run.</summary>
    private static PatcherException Refused(Func<ApplyResult> apply)
    {
        var task = Task.Run(apply);
        Assert.That(task.Wait(TimeSpan.Zero) || SpinWait.SpinUntil(() => task.IsCompleted, Patience), Is.True, "apply hung");
        Assert.That(task.Exception?.InnerException, Is.InstanceOf<PatcherException>(), () => $"apply ended with {task.Status}");
        return (PatcherException)task.Exception!.InnerException!;
    }

    [TestCase("manifest.json")]
    [TestCase("manifest.sig")]
    public void Apply_PatchFileIsFifo_RefusedWithoutHanging(string name)
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("no FIFOs on Windows");
        using var s = new PatchScenario("fifo").WithSmallGame().Install();
        s.BuildPatch();
        MakeFifo(Path.Join(s.PatchDir, name));
        var before = HashListing.Of(s.ParentDir);

        var ex = Refused(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular), ex.Message);
        Assert.That(ex.Message, Does.Contain("a FIFO"));
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before));
    }

    [Test]
    public void Apply_BlobReplacedByFifoAfterItsCheck_RefusedNothingLeftBehind()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("no FIFOs on Windows");
        using var s = new PatchScenario("fifo-blob").WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.ParentDir);
        var blob = Directory.EnumerateFiles(Path.Join(s.PatchDir, "blobs"), "*", SearchOption.AllDirectories).First();
        var layout = new StateLayout(s.InstallDir, null);
        // The blobs were found present and of their size; then, as the blobs are about to be read, one becomes a FIFO.
        var racing = new RacingFileOps(FileOps.Instance, layout.IncomingDir, () => MakeFifo(blob));

        var ex = Refused(() => TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options, null, CancellationToken.None));

        Assert.That(racing.Raced, Is.True);
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular), ex.Message);
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before), "no pending marker, no incoming/, no state directory");
    }

    [Test]
    public void Apply_Format2PayloadBecomesFifoBeforeItIsRead_RefusedAsNotRegularNothingLeftBehind()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("no FIFOs on Windows");
        using var s = new PatchScenario("fifo-payload").WithFormat(2).WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.ParentDir);
        var payload = Path.Join(s.PatchDir, DeltaLimits.PayloadFileName);
        Assert.That(File.Exists(payload), Is.True, "the format 2 patch ships a payload");
        var layout = new StateLayout(s.InstallDir, null);
        // The patch verified with a regular payload; then, as contents are about to be rebuilt, it becomes a FIFO.
        var racing = new RacingFileOps(FileOps.Instance, layout.IncomingDir, () =>
        {
            File.Delete(payload);
            MakeFifo(payload);
        });

        var ex = Refused(() => TransactionEngine.Apply(new EngineSettings(racing), s.InstallDir, s.PatchDir, s.Options, null, CancellationToken.None));

        Assert.That(racing.Raced, Is.True);
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular), ex.Message);
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before), "no pending marker, no incoming/, no state directory");
    }

    [Test]
    public void Apply_BlobsDirectoryIsSymlinkLoop_RefusedAsBadPatch()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("symlinks need privileges on Windows");
        using var s = new PatchScenario("blob-loop").WithSmallGame().Install();
        s.BuildPatch();
        var blobs = Path.Join(s.PatchDir, "blobs");
        Directory.Delete(blobs, recursive: true);
        File.CreateSymbolicLink(blobs, Path.Join(s.PatchDir, "blobs2"));
        File.CreateSymbolicLink(Path.Join(s.PatchDir, "blobs2"), blobs);
        var before = HashListing.Of(s.ParentDir);

        var ex = Refused(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular), ex.Message);
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before));
    }

    [Test]
    public void OpenRegular_Directory_Refused()
    {
        using var temp = TempDir.ForCurrentTest();
        var dir = temp.Dir("manifest.json");

        var ex = Assert.Throws<PatcherException>(() => PatchFileOpen.OpenRegular(dir, "the manifest"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular));
    }

    [Test]
    public void OpenRegular_SymlinkToFile_Refused()
    {
        using var temp = TempDir.ForCurrentTest();
        File.WriteAllText(temp["real"], "x");
        File.CreateSymbolicLink(temp["link"], temp["real"]);

        var ex = Assert.Throws<PatcherException>(() => PatchFileOpen.OpenRegular(temp["link"], "the manifest"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.PatchFileNotRegular));
        using var regular = PatchFileOpen.OpenRegular(temp["real"], "the manifest");
        Assert.That(regular!.Length, Is.EqualTo(1));
        Assert.That(PatchFileOpen.OpenRegular(temp["missing"], "the manifest"), Is.Null);
    }
}
