using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>The receiver rebuilds every content of a patch through one open payload, and checks what it writes.</summary>
public sealed class DeltaReceiverTests
{
    [Test]
    public void Write_EveryContentOfAPatch_OpensThePayloadOnceAndRebuildsEachExactly()
    {
        using var s = Format2ApplyTests.MovingGame(new PatchScenario().WithFormat(2)).Install();
        s.BuildPatch();
        var package = PatchPackage.Open(s.PatchDir, ManifestLimits.Default);
        var walk = TreeOps.Walk(FileOps.Instance, s.InstallDir).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);
        var recipes = package.Manifest.Recipes;
        var frames = recipes.SelectMany(r => r.Ops).Count(o => o.Kind == DeltaOpKind.Data);

        using (var receiver = new DeltaReceiver(FileOps.Instance, s.InstallDir, package, walk))
        {
            Parallel.ForEach(recipes, recipe =>
            {
                using var output = new MemoryStream();
                receiver.Write(recipe, output, null, CancellationToken.None);
                Assert.That(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(output.ToArray())), Is.EqualTo(recipe.Sha256));
            });
        }

        Assert.That(frames, Is.GreaterThan(1), "the patch has several frames");
        Assert.That(package.PayloadOpens, Is.EqualTo(1), "one open for every frame of the apply");
        Assert.That(package.BlobReads, Is.EqualTo(frames), "each frame read once");
    }

    /// <summary>
    /// One content copied from a base file's first half, and another content whose only operation ships the same bytes
    /// as a plain frame: the base region damaged, the copy falls back to the shipped frame; not shipped, it is refused.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void Write_CopiedBaseRegionDamaged_FallsBackToShippedOutputElseBaseMismatchNamingTheFile(bool shipped)
    {
        using var temp = TempDir.ForCurrentTest();
        var install = temp.Dir("install");
        var old = Format2ApplyTests.Noise(31, 100_000);
        var half = old.AsSpan(0, 50_000).ToArray();
        var halfSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(half));
        var damaged = (byte[])old.Clone();
        damaged[10] ^= 0xFF;
        File.WriteAllBytes(Path.Join(install, "a.bin"), damaged);
        var frame = ZstdPatch.Compress([], half, 3);
        var copy = new ContentRecipe
        {
            Sha256 = halfSha, Size = half.Length,
            Ops = [new DeltaOp { Kind = DeltaOpKind.Copy, Length = half.Length, Sha256 = halfSha, BasePath = "a.bin", BaseOffset = 0 }],
        };
        var plain = new DeltaOp { Kind = DeltaOpKind.Data, Length = half.Length, Sha256 = halfSha, PayloadOffset = 0, StoredLength = frame.Length };
        var manifest = new Manifest
        {
            Format = 2, Product = "demo-game", Version = "2", FromVersion = "1", Created = DateTimeOffset.UnixEpoch, Directories = [],
            Files = [TargetFile.Whole("half.bin", half.Length, halfSha)],
            Base = [new BaseFile { Path = "a.bin", Size = old.Length, Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(old)) }],
            Blobs = [],
            Recipes = shipped ? [copy, copy with { Ops = [plain] }] : [copy],
            PayloadSize = frame.Length,
        };
        var walk = TreeOps.Walk(FileOps.Instance, install).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);
        using var receiver = new DeltaReceiver(FileOps.Instance, install, new FakeDeltaSource(manifest, frame), walk);
        using var output = new MemoryStream();

        if (shipped)
        {
            receiver.Write(copy, output, null, CancellationToken.None);
            Assert.That(output.ToArray(), Is.EqualTo(half), "the shipped frame replaced the damaged base region");
        }
        else
        {
            var ex = Assert.Throws<PatcherException>(() => receiver.Write(copy, output, null, CancellationToken.None));
            Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
            Assert.That(ex.Message, Does.Contain("'a.bin'"));
        }
    }
}
