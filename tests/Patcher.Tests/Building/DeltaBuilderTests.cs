using Patching.Building;
using Patching.Deltas;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Building;

public sealed class DeltaBuilderTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp() => _temp = TempDir.ForCurrentTest();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public void ResolveLevel_NoLevelGiven_NineteenForSmallUpdatesNineForLarge()
    {
        Assert.Multiple(() =>
        {
            Assert.That(PatchBuilder.ResolveLevel(PatchBuilder.AutoLevel, 0), Is.EqualTo(19));
            Assert.That(PatchBuilder.ResolveLevel(PatchBuilder.AutoLevel, PatchBuilder.LargeUpdateBytes), Is.EqualTo(19));
            Assert.That(PatchBuilder.ResolveLevel(PatchBuilder.AutoLevel, PatchBuilder.LargeUpdateBytes + 1), Is.EqualTo(9));
            Assert.That(PatchBuilder.ResolveLevel(19, PatchBuilder.LargeUpdateBytes * 10), Is.EqualTo(19));
            Assert.That(PatchBuilder.ResolveLevel(3, 0), Is.EqualTo(3));
        });
    }

    [Test]
    public void Build_LargeUpdateSmallEdit_ReferenceFollowsTheRun()
    {
        var (from, to) = EditedPair(8 << 20, edits: 1);

        var large = BuildOne(from, to, level: 3, large: true).Recipe;
        var small = BuildOne(from, to, level: 3, large: false).Recipe;

        var largeData = large.Ops.Single(o => o.Kind == DeltaOpKind.Data);
        var smallData = small.Ops.Single(o => o.Kind == DeltaOpKind.Data);
        Assert.Multiple(() =>
        {
            // An update under the threshold references the whole 8 MiB file; a large one about eight times the run.
            Assert.That(smallData.Refs.Sum(r => r.Length), Is.EqualTo(8 << 20));
            Assert.That(largeData.Refs.Sum(r => r.Length), Is.LessThanOrEqualTo(Math.Max(1 << 20, 8 * largeData.Length)));
            Assert.That(largeData.Refs.Sum(r => r.Length), Is.GreaterThanOrEqualTo(largeData.Length));
        });
    }

    [Test]
    public void Build_LargeUpdateIncompressibleRun_KeepsTheLevelOneFrame()
    {
        var from = _temp["from"];
        var to = _temp["to"];
        Directory.CreateDirectory(from);
        Directory.CreateDirectory(to);
        // Random bytes from 240 values: about 1.3% compressible by entropy coding, under the 1/64 the trial asks for,
        // and coded differently by levels 1 and 19 (all-random bytes would be stored raw by both).
        var bytes = new byte[256 * 1024];
        new Random(5).NextBytes(bytes);
        for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)(bytes[i] % 240);
        File.WriteAllBytes(Path.Join(to, "noise.bin"), bytes);

        var (largeRecipe, largeFrames) = BuildOne(from, to, level: 19, large: true);
        var (smallRecipe, smallFrames) = BuildOne(from, to, level: 19, large: false);

        var levelOne = ZstdPatch.Compress([], bytes, 1);
        var levelNineteen = ZstdPatch.Compress([], bytes, 19);
        Assert.That(levelOne.AsSpan().SequenceEqual(levelNineteen), Is.False, "the check needs levels whose frames differ");
        Assert.Multiple(() =>
        {
            Assert.That(Frame(largeFrames, largeRecipe.Ops.Single()).AsSpan().SequenceEqual(levelOne), Is.True, "large update: the level-1 frame");
            Assert.That(Frame(smallFrames, smallRecipe.Ops.Single()).AsSpan().SequenceEqual(levelNineteen), Is.True, "small update: the level-19 frame");
        });
    }

    [Test]
    public void Build_ManyEditsInOneFile_FramesInOrderAndRebuildTheFile([Values(false, true)] bool large)
    {
        var (from, to) = EditedPair(12 << 20, edits: 40);

        var (recipe, frames) = BuildOne(from, to, level: 3, large);
        var again = BuildOne(from, to, level: 3, large);

        Assert.That(recipe.Ops.Count(o => o.Kind == DeltaOpKind.Data), Is.GreaterThan(4), "enough frames to compress several at once");
        Assert.That(again.Frames.ToArray().AsSpan().SequenceEqual(frames.ToArray()), Is.True, "the same frames in the same order on every build");
        var rebuilt = new MemoryStream();
        foreach (var op in recipe.Ops)
        {
            if (op.Kind == DeltaOpKind.Copy)
            {
                rebuilt.Write(ReadBase(from, op.BasePath!, op.BaseOffset, op.Length));
                continue;
            }

            var reference = op.Refs.SelectMany(r => ReadBase(from, r.Path, r.Offset, r.Length)).ToArray();
            rebuilt.Write(ZstdPatch.Decompress(reference, Frame(frames, op), (int)op.Length, "test").Span);
        }

        Assert.That(rebuilt.ToArray().AsSpan().SequenceEqual(File.ReadAllBytes(Path.Join(to, "pack.bin"))), Is.True, "the ops rebuild the new file");
    }

    /// <summary>A base file of <paramref name="size"/> pseudo-random bytes and its next version with <paramref name="edits"/> spans replaced.</summary>
    private (string From, string To) EditedPair(int size, int edits)
    {
        var from = _temp["from"];
        var to = _temp["to"];
        Directory.CreateDirectory(from);
        Directory.CreateDirectory(to);
        var rng = new Random(11);
        var old = new byte[size];
        rng.NextBytes(old);
        var next = (byte[])old.Clone();
        for (var e = 0; e < edits; e++)
        {
            var at = (int)((long)size * (e + 1) / (edits + 1));
            rng.NextBytes(next.AsSpan(at, 100));
        }

        File.WriteAllBytes(Path.Join(from, "pack.bin"), old);
        File.WriteAllBytes(Path.Join(to, "pack.bin"), next);
        return (from, to);
    }

    private static (ContentRecipe Recipe, MemoryStream Frames) BuildOne(string from, string to, int level, bool large)
    {
        var baseTree = TreeScanner.Scan(from);
        var target = TreeScanner.Scan(to);
        var builder = new DeltaBuilder(from, baseTree, level, large);
        builder.IndexBase(CancellationToken.None);
        var file = target.Files.Single();
        var frames = new MemoryStream();
        return (builder.Build(file, Path.Join(to, file.Path), frames, CancellationToken.None), frames);
    }

    private static byte[] Frame(MemoryStream frames, DeltaOp op) => frames.ToArray().AsSpan((int)op.PayloadOffset, (int)op.StoredLength).ToArray();

    private static byte[] ReadBase(string from, string path, long offset, long length)
    {
        using var input = File.OpenRead(Path.Join(from, path));
        input.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[length];
        input.ReadExactly(buffer);
        return buffer;
    }
}
