using Patching.Deltas;
using Patching.Tests.Trust;

namespace Patching.Tests.Deltas;

public sealed class ZstdPatchTests
{
    [Test]
    public void Decompress_AgainstTheReference_ReturnsTheSourceAndTheFrameIsSmall()
    {
        var reference = Format2ApplyTests.Noise(31, 1 << 20);
        var source = (byte[])reference.Clone();
        source[123_456] ^= 0x55;

        var frame = ZstdPatch.Compress(reference, source, 19);
        var output = ZstdPatch.Decompress(reference, frame, source.Length, "test");

        Assert.That(output.ToArray(), Is.EqualTo(source));
        Assert.That(frame.Length, Is.LessThan(200), "one changed byte in 1 MiB of noise costs bytes against the reference");
    }

    [Test]
    public void Decompress_FrameAskingForAGigabyteWindow_DeltaWindowTooLarge()
    {
        var ex = Assert.Throws<PatcherException>(() => ZstdPatch.Decompress([], HostileCorpusFormat2.HugeWindowFrame, 1, "test"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaWindowTooLarge));
    }

    [Test]
    public void Decompress_OutputOneByteLongerThanDeclared_DeltaOutputTooLong()
    {
        var frame = ZstdPatch.Compress([], new byte[1001], 3);

        var ex = Assert.Throws<PatcherException>(() => ZstdPatch.Decompress([], frame, 1000, "test"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaOutputTooLong));
    }

    [Test]
    public void Decompress_OutputShorterThanDeclared_DeltaCorrupt()
    {
        var frame = ZstdPatch.Compress([], new byte[999], 3);

        var ex = Assert.Throws<PatcherException>(() => ZstdPatch.Decompress([], frame, 1000, "test"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaCorrupt));
    }

    [Test]
    public void Decompress_TruncatedFrame_DeltaCorrupt()
    {
        var frame = ZstdPatch.Compress([], Format2ApplyTests.Noise(32, 10_000), 3);

        var ex = Assert.Throws<PatcherException>(() => ZstdPatch.Decompress([], frame.AsSpan(0, frame.Length - 5), 10_000, "test"));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaCorrupt));
    }
}
