namespace Patching.Building;

/// <summary>Receives one chunk of a stream: its offset and bytes (valid only during the call).</summary>
internal delegate void ChunkHandler(long offset, ReadOnlySpan<byte> chunk);

/// <summary>
/// The sizes of one chunking: minimum, maximum, and the two normalized-chunking masks around the average
/// (2^<c>avgBits</c>): two bits harder before the average, two bits easier after it.
/// </summary>
internal readonly record struct ChunkSizes(int Min, int Avg, int Max, ulong MaskHard, ulong MaskEasy)
{
    public static ChunkSizes Of(int min, int avgBits, int max) => new(min, 1 << avgBits, max, HighBits(avgBits + 2), HighBits(avgBits - 2));

    // The gear hash shifts left, so its high bits carry the most recent bytes: the masks take high bits.
    private static ulong HighBits(int bits) => ((1UL << bits) - 1) << (64 - bits);
}

/// <summary>
/// Content-defined chunking (FastCDC: a gear rolling hash with normalized chunking), so that an insertion or a
/// deletion moves only the chunk boundaries near it and every later chunk is found again. Only the builder chunks:
/// the format records byte ranges, not how they were found, so these parameters can change without a format change.
/// Sizes (docs/decisions.md): minimum 16 KiB, average 64 KiB, maximum 256 KiB.
/// </summary>
internal static class Chunker
{
    public const int MinSize = 16 * 1024;
    public const int AvgSize = 64 * 1024;
    public const int MaxSize = 256 * 1024;

    /// <summary>
    /// The chunks of the base and of the contents to rebuild. Normalized chunking (level 2): a harder mask (18 bits)
    /// before the average size, an easier one (14 bits) after, which narrows the spread of chunk sizes around the average.
    /// </summary>
    public static readonly ChunkSizes Default = ChunkSizes.Of(MinSize, 16, MaxSize);

    /// <summary>
    /// Small chunks (256 B to 4 KiB, 1 KiB on average) that locate a run of new bytes inside another content: a source
    /// file of a few KiB found again inside a bundle, where no whole default chunk repeats (docs/decisions.md).
    /// </summary>
    public static readonly ChunkSizes Fine = ChunkSizes.Of(256, 10, 4 * 1024);

    private static readonly ulong[] Gear = MakeGear();

    /// <summary>Splits <paramref name="input"/> into chunks of the <see cref="Default"/> sizes, in order, reading it once through a 1 MiB buffer.</summary>
    public static void Split(Stream input, ChunkHandler onChunk, CancellationToken ct = default) => Split(input, Default, onChunk, ct);

    /// <summary>
    /// Splits <paramref name="input"/> into chunks of <paramref name="sizes"/>, in order, reading it once, up to its end
    /// or <paramref name="limit"/> bytes from its position.
    /// </summary>
    public static void Split(Stream input, ChunkSizes sizes, ChunkHandler onChunk, CancellationToken ct, long limit = long.MaxValue)
    {
        var buffer = new byte[4 * sizes.Max];
        int start = 0, end = 0;
        long offset = 0;
        var eof = false;
        while (true)
        {
            if (!eof && end - start < sizes.Max)
            {
                // Keep at least one maximal chunk ahead of the cut point.
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }

                while (end < buffer.Length)
                {
                    var n = input.Read(buffer, end, (int)Math.Min(buffer.Length - end, limit - offset - end + start));
                    if (n == 0)
                    {
                        eof = true;
                        break;
                    }

                    end += n;
                }
            }

            if (end == start) return;
            ct.ThrowIfCancellationRequested();
            var cut = Cut(buffer.AsSpan(start, Math.Min(end - start, sizes.Max)), sizes);
            onChunk(offset, buffer.AsSpan(start, cut));
            offset += cut;
            start += cut;
        }
    }

    /// <summary>The length of the <see cref="Default"/> chunk that starts <paramref name="data"/> (all of it when shorter than the minimum).</summary>
    public static int Cut(ReadOnlySpan<byte> data) => Cut(data, Default);

    /// <summary>The length of the chunk of <paramref name="sizes"/> that starts <paramref name="data"/>.</summary>
    public static int Cut(ReadOnlySpan<byte> data, ChunkSizes sizes)
    {
        var n = Math.Min(data.Length, sizes.Max);
        if (n <= sizes.Min) return n;
        var normal = Math.Min(n, sizes.Avg);
        ulong fp = 0;
        var i = sizes.Min;
        for (; i < normal; i++)
        {
            fp = (fp << 1) + Gear[data[i]];
            if ((fp & sizes.MaskHard) == 0) return i + 1;
        }

        for (; i < n; i++)
        {
            fp = (fp << 1) + Gear[data[i]];
            if ((fp & sizes.MaskEasy) == 0) return i + 1;
        }

        return n;
    }

    /// <summary>256 fixed pseudo-random values (SplitMix64 from a fixed seed): the same cut points on every build.</summary>
    private static ulong[] MakeGear()
    {
        var gear = new ulong[256];
        var state = 0x5061746368657232UL; // "Patcher2"
        for (var i = 0; i < gear.Length; i++)
        {
            state += 0x9E3779B97F4A7C15UL;
            var z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            gear[i] = z ^ (z >> 31);
        }

        return gear;
    }
}
