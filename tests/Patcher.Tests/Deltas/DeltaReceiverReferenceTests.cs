using System.Security.Cryptography;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// A file edited in one place: a copy of the old file's first part, the edit decoded against a window of the whole
/// old file, a copy of the rest. The copies lie inside the verified window and are taken from it.
/// </summary>
public sealed class DeltaReceiverReferenceTests
{
    private const int OldLength = 100_000;
    private const int Cut = 40_000;

    [Test]
    public void Write_CopiesInsideTheReferenceWindow_ReadsTheBaseOnceAndRebuildsExactly()
    {
        using var temp = TempDir.ForCurrentTest();
        var install = temp.Dir("install");
        var old = Format2ApplyTests.Noise(41, OldLength);
        File.WriteAllBytes(Path.Join(install, "a.bin"), old);
        var (recipe, expected, source) = EditedInOnePlace(old);
        var fs = new CountingFileOps(FileOps.Instance);

        using var output = new MemoryStream();
        using (var receiver = new DeltaReceiver(fs, install, source, Walk(install)))
        {
            receiver.Write(recipe, output, null, CancellationToken.None);
        }

        Assert.That(output.ToArray(), Is.EqualTo(expected));
        Assert.That(fs.Reads(Path.Join(install, "a.bin")), Is.EqualTo(1), "the window is read once; both copies come from it");
    }

    /// <summary>The window is damaged after the first copy's range: that copy still reads its intact range, and the edit is refused naming the file.</summary>
    [Test]
    public void Write_ReferenceWindowDamagedOutsideTheFirstCopy_BaseMismatchNamingTheFile()
    {
        using var temp = TempDir.ForCurrentTest();
        var install = temp.Dir("install");
        var old = Format2ApplyTests.Noise(43, OldLength);
        var (recipe, _, source) = EditedInOnePlace(old);
        var damaged = (byte[])old.Clone();
        damaged[Cut + 5_000] ^= 0xFF;
        File.WriteAllBytes(Path.Join(install, "a.bin"), damaged);
        var written = new List<long>();

        using var output = new MemoryStream();
        using var receiver = new DeltaReceiver(FileOps.Instance, install, source, Walk(install));
        var ex = Assert.Throws<PatcherException>(() => receiver.Write(recipe, output, written.Add, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
        Assert.That(ex.Message, Does.Contain("'a.bin'"));
        Assert.That(written, Is.EqualTo(new long[] { Cut }), "the first copy was written from its own intact range");
    }

    private static (ContentRecipe Recipe, byte[] Expected, FakeDeltaSource Source) EditedInOnePlace(byte[] old)
    {
        var inserted = Format2ApplyTests.Noise(42, 2_000);
        var expected = old.AsSpan(0, Cut).ToArray().Concat(inserted).Concat(old.AsSpan(Cut).ToArray()).ToArray();
        var frame = ZstdPatch.Compress(old, inserted, 3);
        var window = new RefWindow("a.bin", 0, old.Length, Sha(old));
        var recipe = new ContentRecipe
        {
            Sha256 = Sha(expected), Size = expected.Length,
            Ops =
            [
                new DeltaOp { Kind = DeltaOpKind.Copy, Length = Cut, Sha256 = Sha(old.AsSpan(0, Cut)), BasePath = "a.bin", BaseOffset = 0 },
                new DeltaOp { Kind = DeltaOpKind.Data, Length = inserted.Length, Sha256 = Sha(inserted), PayloadOffset = 0, StoredLength = frame.Length, Refs = [window] },
                new DeltaOp { Kind = DeltaOpKind.Copy, Length = old.Length - Cut, Sha256 = Sha(old.AsSpan(Cut)), BasePath = "a.bin", BaseOffset = Cut },
            ],
        };
        var manifest = new Manifest
        {
            Format = 2, Product = "demo-game", Version = "2", FromVersion = "1", Created = DateTimeOffset.UnixEpoch, Directories = [],
            Files = [TargetFile.Whole("a.bin", expected.Length, recipe.Sha256)],
            Base = [new BaseFile { Path = "a.bin", Size = old.Length, Sha256 = Sha(old) }],
            Blobs = [],
            Recipes = [recipe],
            PayloadSize = frame.Length,
        };
        return (recipe, expected, new FakeDeltaSource(manifest, frame));
    }

    private static Dictionary<string, EntryInfo> Walk(string install) =>
        TreeOps.Walk(FileOps.Instance, install).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);

    private static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
