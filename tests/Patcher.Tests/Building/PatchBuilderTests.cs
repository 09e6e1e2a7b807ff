using System.Text;
using Patching.Building;
using Patching.Manifests;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Building;

public sealed class PatchBuilderTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp() => _temp = TempDir.ForCurrentTest();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private BuildResult Build(string? from, string to, string outName, TimeProvider time, bool compress = true, string? key = null) =>
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = from,
            ToDir = to,
            OutDir = _temp[outName],
            Product = "tree-game",
            Version = "2.0",
            FromVersion = from is null ? null : "1.0",
            Compress = compress,
            PrivateKeyPem = key,
            Time = time,
            Format = 1,
        });

    [Test]
    public void Build_SameTreesTwiceWithFixedClock_ManifestBytesIdentical()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 42, files: 30);

        var first = File.ReadAllBytes(Build(oldDir, newDir, "out1", FixedTimeProvider.Golden).ManifestPath);
        var second = File.ReadAllBytes(Build(oldDir, newDir, "out2", FixedTimeProvider.Golden).ManifestPath);

        Assert.That(second, Is.EqualTo(first));
        Assert.That(HashListing.Of(_temp["out2"]), Is.EqualTo(HashListing.Of(_temp["out1"])), "blob files differ between identical builds");
    }

    [Test]
    public void Build_SameTreesOnAnotherDay_DiffersOnlyInCreated()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 7);
        var later = new FixedTimeProvider(FixedTimeProvider.GoldenTime.AddDays(3).AddMilliseconds(517));

        var first = Build(oldDir, newDir, "out1", FixedTimeProvider.Golden).Manifest;
        var second = Build(oldDir, newDir, "out2", later).Manifest;

        Assert.That(second.Created, Is.EqualTo(FixedTimeProvider.GoldenTime.AddDays(3)), "created is truncated to whole seconds");
        Assert.That(ManifestCodec.Serialize(second with { Created = first.Created }), Is.EqualTo(ManifestCodec.Serialize(first)));
    }

    [Test]
    public void Build_GeneratedManifest_RoundTripsThroughCodecExactly()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 3);
        var bytes = File.ReadAllBytes(Build(oldDir, newDir, "out", FixedTimeProvider.Golden).ManifestPath);

        var again = ManifestCodec.Serialize(ManifestCodec.Deserialize(bytes));

        Assert.That(again, Is.EqualTo(bytes));
    }

    [Test]
    public void Build_Delta_ShipsBlobsOnlyForContentTheBaseLacks()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 11);

        var m = Build(oldDir, newDir, "out", FixedTimeProvider.Golden).Manifest;

        var baseContent = m.Base.Select(b => b.Sha256).ToHashSet();
        var expected = m.Files.Where(f => f.Size > 0 && !baseContent.Contains(f.Sha256)).Select(f => f.Sha256).Distinct().Order(StringComparer.Ordinal);
        Assert.That(m.Blobs.Select(b => b.Sha256), Is.EqualTo(expected));
        var renamed = m.Files.Single(f => f.Path == "bin/renamed03.dat");
        Assert.That(m.Blobs.Select(b => b.Sha256), Does.Not.Contain(renamed.Sha256), "a renamed file's content comes from the base");
    }

    [Test]
    public void Build_FullPackage_HasNoBaseAndShipsEveryContent()
    {
        TreeFactory.Write(_temp["tree"], seed: 5);

        var m = Build(null, _temp["tree"], "out", FixedTimeProvider.Golden).Manifest;

        Assert.Multiple(() =>
        {
            Assert.That(m.FromVersion, Is.Null);
            Assert.That(m.Base, Is.Empty);
            Assert.That(m.BaseDirectories, Is.Empty);
            // Every part ships; nothing ships that no file holds (a zero-length file has no parts).
            Assert.That(m.Blobs.Select(b => b.Sha256), Is.SupersetOf(m.Files.SelectMany(f => f.Parts).Select(p => p.Sha256).Distinct()));
            Assert.That(m.Blobs.Select(b => b.Sha256), Is.SubsetOf(m.Files.Select(f => f.Sha256)));
        });
    }

    [Test]
    public void Build_WithCompression_StoresCompressibleContentAsBrotliUnderBlobsPrefixDir()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 9);

        var m = Build(oldDir, newDir, "out", FixedTimeProvider.Golden, compress: true).Manifest;

        var text = m.Files.Single(f => f.Path == "added/new.txt");
        var blob = m.Blobs.Single(b => b.Sha256 == text.Sha256);
        Assert.Multiple(() =>
        {
            Assert.That(blob.Compression, Is.EqualTo("br"));
            Assert.That(blob.StoredSize, Is.LessThan(blob.Size * 95 / 100));
            Assert.That(blob.RelativePath, Is.EqualTo($"blobs/{blob.Sha256[..2]}/{blob.Sha256}.br"));
            Assert.That(new FileInfo(_temp[Path.Join("out", blob.RelativePath)]).Length, Is.EqualTo(blob.StoredSize));
        });
        foreach (var raw in m.Blobs.Where(b => b.Compression == "none"))
        {
            Assert.That(raw.StoredSize, Is.EqualTo(raw.Size));
            Assert.That(File.Exists(_temp[Path.Join("out", "blobs", raw.Sha256[..2], raw.Sha256)]), Is.True);
        }
    }

    [Test]
    public void Build_NoCompress_StoresEveryBlobRaw()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 9);

        var m = Build(oldDir, newDir, "out", FixedTimeProvider.Golden, compress: false).Manifest;

        Assert.That(m.Blobs.Select(b => b.Compression), Is.All.EqualTo("none"));
    }

    [Test]
    public void Build_Output_EveryBlobDecodesToItsDeclaredContent()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 21, files: 25);
        Build(oldDir, newDir, "out", FixedTimeProvider.Golden);

        var package = PatchPackage.Open(_temp["out"], ManifestLimits.Default);

        Assert.DoesNotThrow(() => package.VerifyAllBlobs(CancellationToken.None));
    }

    [Test]
    public void Build_TreeWithEmptyDirectoryAndExecutable_RecordsBoth()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 1);

        var m = Build(oldDir, newDir, "out", FixedTimeProvider.Golden).Manifest;

        Assert.That(m.Directories, Does.Contain("new-empty"));
        Assert.That(m.Directories, Does.Not.Contain("empty"));
        Assert.That(m.BaseDirectories, Does.Contain("empty"));
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(m.Files.Single(f => f.Path == "bin/tool.sh").Executable, Is.True);
            Assert.That(m.Files.Where(f => f.Path.EndsWith(".txt", StringComparison.Ordinal)).Select(f => f.Executable), Is.All.False);
        }
    }

    [Test]
    public void Build_Lists_AreSortedOrdinally()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 2);
        TreeFactory.WriteFile(newDir, "B.txt", "upper"u8.ToArray());
        TreeFactory.WriteFile(newDir, "a.txt", "lower"u8.ToArray());

        var m = Build(oldDir, newDir, "out", FixedTimeProvider.Golden).Manifest;

        Assert.That(m.Files.Select(f => f.Path), Is.EqualTo(m.Files.Select(f => f.Path).Order(StringComparer.Ordinal)));
        Assert.That(m.Base.Select(f => f.Path), Is.EqualTo(m.Base.Select(f => f.Path).Order(StringComparer.Ordinal)));
        Assert.That(m.Directories, Is.EqualTo(m.Directories.Order(StringComparer.Ordinal)));
        Assert.That(m.Blobs.Select(b => b.Sha256), Is.EqualTo(m.Blobs.Select(b => b.Sha256).Order(StringComparer.Ordinal)));
    }

    [Test]
    public void Build_Unsigned_WritesNoSignatureFile()
    {
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 4);

        Build(oldDir, newDir, "out", FixedTimeProvider.Golden, key: null);

        Assert.That(File.Exists(_temp[Path.Join("out", ManifestCodec.SignatureFileName)]), Is.False);
    }

    [Test]
    public void Build_FileNameWithBackslash_RefusedAsUnsafePath()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("a backslash cannot be part of a Windows file name");
        TreeFactory.Write(_temp["tree"], seed: 5, files: 2);
        TreeFactory.WriteFile(_temp["tree"], "evil\\name.txt", Encoding.ASCII.GetBytes("x"));

        var ex = Assert.Throws<PatcherException>(() => Build(null, _temp["tree"], "out", FixedTimeProvider.Golden));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.UnsafePath));
    }

    [Test]
    public void Build_TreeWithSymlink_RefusedAsUnsafePath()
    {
        TreeFactory.Write(_temp["tree"], seed: 5, files: 2);
        try
        {
            File.CreateSymbolicLink(_temp[Path.Join("tree", "link")], "/etc/passwd");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Assert.Ignore("cannot create symlinks here: " + ex.Message);
        }

        var error = Assert.Throws<PatcherException>(() => Build(null, _temp["tree"], "out", FixedTimeProvider.Golden));

        Assert.That(error!.Code, Is.EqualTo(PatchErrorCode.UnsafePath));
    }
}
