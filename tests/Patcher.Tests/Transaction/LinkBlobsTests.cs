using Microsoft.Win32.SafeHandles;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Transaction;

/// <summary>
/// <see cref="PatcherOptions.LinkPatchBlobs"/>: uncompressed blobs are hashed where they lie and hard-linked into the
/// install instead of copied, only when nobody but this user can have written them, and a corrupt one is still refused
/// with nothing changed.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LinkBlobsTests
{
    private static PatcherOptions LinkOptions(PatchScenario s) => s.Options with { Strategy = CommitStrategy.Swap, LinkPatchBlobs = true };

    /// <summary>A game whose update writes incompressible files (stored raw, so linkable), one of them executable.</summary>
    private static PatchScenario Scenario()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("blobs are linked on Linux only (the swap strategy and statx identity)");
        var s = new PatchScenario().WithSmallGame().Install();
        PatchScenario.Write(s.NewTree, "data/level9.pak", Noise(1, 300_000));
        PatchScenario.Write(s.NewTree, "bin/tool", Noise(2, 20_000), executable: true);
        PatchScenario.Write(s.NewTree, "data/level1.pak", Noise(3, 50_000));
        s.BuildPatch();
        return s;
    }

    private static byte[] Noise(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>The blob file a new file of the install is written from.</summary>
    private static string BlobOf(PatchScenario s, string relativePath)
    {
        var package = PatchPackage.Open(s.PatchDir, ManifestLimits.Default);
        var file = package.Manifest.Files.Single(f => f.Path == relativePath);
        var blob = package.Manifest.Blobs.Single(b => b.Sha256 == file.Parts[0].Sha256);
        Assert.That(blob.Compression, Is.EqualTo(BlobCompression.None), "noise is stored raw");
        return package.BlobPath(blob);
    }

    private static string Installed(PatchScenario s, string rel) => Path.Join(s.InstallDir, rel);

    [Test]
    public void Apply_LinkPatchBlobs_InstalledFilesShareTheBlobsData()
    {
        using var s = Scenario();

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        foreach (var rel in new[] { "data/level9.pak", "bin/tool", "data/level1.pak" })
            Assert.That(ApplyTests.Inode(Installed(s, rel)), Is.EqualTo(ApplyTests.Inode(BlobOf(s, rel))), rel + " is the blob's inode, not a copy");
        Assert.That(result.BytesWritten, Is.LessThan(370_000), "the linked blobs' bytes were not written again");
        // The patch is intact and can still be applied elsewhere.
        var again = new PatchScenario().WithSmallGame().Install();
        using (again)
        {
            var other = Patcher.Apply(again.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });
            Assert.That(other.Status, Is.EqualTo(ApplyStatus.Applied));
            Assert.That(PatchScenario.Listing(again.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        }
    }

    [Test]
    public void Apply_LinkPatchBlobsOff_BlobsAreCopied()
    {
        using var s = Scenario();

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.Not.EqualTo(ApplyTests.Inode(BlobOf(s, "data/level9.pak"))));
    }

    [TestCase(UnixFileMode.GroupWrite)]
    [TestCase(UnixFileMode.OtherWrite)]
    public void Apply_LinkPatchBlobs_BlobOthersCouldWrite_IsCopiedNotLinked(UnixFileMode extra)
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        File.SetUnixFileMode(blob, File.GetUnixFileMode(blob) | extra);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.Not.EqualTo(ApplyTests.Inode(blob)),
            "a blob another user could rewrite must not become an installed file");
        Assert.That(ApplyTests.Inode(Installed(s, "bin/tool")), Is.EqualTo(ApplyTests.Inode(BlobOf(s, "bin/tool"))), "the others are still linked");
    }

    [Test]
    public void Apply_LinkPatchBlobs_SetuidBlob_IsCopiedWithoutTheBit()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "bin/tool");
        File.SetUnixFileMode(blob, File.GetUnixFileMode(blob) | UnixFileMode.SetUser | UnixFileMode.UserExecute);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        var installed = Installed(s, "bin/tool");
        Assert.That(ApplyTests.Inode(installed), Is.Not.EqualTo(ApplyTests.Inode(blob)), "a setuid blob is never linked");
        Assert.That(File.GetUnixFileMode(installed) & UnixFileMode.SetUser, Is.EqualTo((UnixFileMode)0));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_LinkPatchBlobs_LinkedFile_GetsTheModeACopyWouldGet()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        File.SetUnixFileMode(blob, UnixFileMode.UserRead | UnixFileMode.UserWrite); // 0600: the download's mode
        var tool = BlobOf(s, "bin/tool");
        File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.EqualTo(ApplyTests.Inode(blob)), "linked");
        var umask = Umask();
        Assert.That((int)File.GetUnixFileMode(Installed(s, "data/level9.pak")), Is.EqualTo(0x1B6 & ~umask), "0666 less the umask, not the blob's 0600");
        Assert.That((int)File.GetUnixFileMode(Installed(s, "bin/tool")), Is.EqualTo((0x1B6 & ~umask) | 0x49), "and the executable bits");
    }

    [Test]
    public void Apply_LinkPatchBlobs_BlobOwnedByAnotherUser_IsCopied()
    {
        using var s = Scenario();
        if (Environment.UserName != "root") Assert.Ignore("changing a file's owner needs root");
        var blob = BlobOf(s, "data/level9.pak");
        Chown(blob, 65534);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.Not.EqualTo(ApplyTests.Inode(blob)));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_LinkPatchBlobs_BlobWithASecondName_IsCopied()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        Assert.That(FileOps.Instance.TryHardLink(blob, Path.Join(s.Root, "elsewhere.pak")), Is.True); // e.g. a download cache made with cp -al

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.Not.EqualTo(ApplyTests.Inode(blob)), "the install shares no inode with unrelated names");
        Assert.That(ApplyTests.Inode(Installed(s, "bin/tool")), Is.EqualTo(ApplyTests.Inode(BlobOf(s, "bin/tool"))));
    }

    [Test]
    public void Apply_LinkPatchBlobs_BlobOpenForWriting_IsCopied()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        // A downloader still holding the file open for writing could change it after the hash.
        using var writer = new FileStream(blob, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(ApplyTests.Inode(Installed(s, "data/level9.pak")), Is.Not.EqualTo(ApplyTests.Inode(blob)));
        Assert.That(ApplyTests.Inode(Installed(s, "bin/tool")), Is.EqualTo(ApplyTests.Inode(BlobOf(s, "bin/tool"))));
    }

    private static int Umask()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Umask:", StringComparison.Ordinal));
        return Convert.ToInt32(line["Umask:".Length..].Trim(), 8);
    }

    private static void Chown(string path, int uid)
    {
        using var p = System.Diagnostics.Process.Start("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path])!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void Apply_LinkPatchBlobs_BlobWithTheExecutableBit_InstalledAsTheManifestSays()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        File.SetUnixFileMode(blob, File.GetUnixFileMode(blob) | UnixFileMode.UserExecute);

        Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s));

        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "level9.pak not executable, bin/tool executable");
    }

    [Test]
    public void Apply_LinkPatchBlobs_CorruptBlob_RefusedAndTheWholeRootUnchanged()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x5a;
        File.WriteAllBytes(blob, bytes);
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, LinkOptions(s)));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before), "install and state byte-identical");
        foreach (var rel in new[] { "data/level9.pak", "bin/tool", "data/level1.pak" })
            Assert.That(LinkCount(BlobOf(s, rel)), Is.EqualTo(1), rel + ": no link to a blob survives a refusal");
    }

    [Test]
    public void Apply_LinkPatchBlobs_BlobReplacedAfterItWasHashed_ReplacementNeverInstalled()
    {
        using var s = Scenario();
        var blob = BlobOf(s, "data/level9.pak");
        var before = PatchScenario.Listing(s.ParentDir);
        // Between the hash (through the open descriptor) and the link (by path), another file takes the blob's name.
        var fs = new ReplacingFileOps(FileOps.Instance, blob, Noise(99, 300_000));

        var ex = Assert.Throws<PatcherException>(() => TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir,
            LinkOptions(s), null, CancellationToken.None));

        Assert.That(fs.Replaced, Is.True);
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), "the copy that replaces the refused link reads the impostor and refuses it");
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before), "install and state byte-identical");
    }

    /// <summary>Renames a file of other content over <paramref name="target"/> just before the first open-file link.</summary>
    private sealed class ReplacingFileOps(IFileOps inner, string target, byte[] content) : FileOpsDecorator(inner)
    {
        public bool Replaced { get; private set; }

        public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable)
        {
            if (path == target && !Replaced)
            {
                File.WriteAllBytes(target + ".impostor", content);
                File.Move(target + ".impostor", target, overwrite: true);
                Replaced = true;
            }

            return Inner.TryLinkOpenFile(file, path, newPath, executable);
        }
    }

    private static ulong LinkCount(string path)
    {
        var output = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true })!;
        var text = output.StandardOutput.ReadToEnd();
        output.WaitForExit();
        return ulong.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
