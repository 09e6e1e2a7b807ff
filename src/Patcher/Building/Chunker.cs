namespace Patching.Building;

/// <summary>Receives one chunk of a stream: its offset and bytes (valid only during the call).</summary>
internal delegate void ChunkHandler(long offset, ReadOnlySpan<byte> chunk);

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

    // Normalized chunking (level 2): a harder mask (18 bits) before the average size, an easier one (14 bits) after,
    // which narrows the spread of chunk sizes around the average. The gear hash shifts left, so its high bits carry
    // the most recent bytes: the masks take high bits.
    private const ulong MaskHard = ((1UL << 18) - 1) << (64 - 18);
    private const ulong MaskEasy = ((1UL << 14) - 1) << (64 - 14);

    private static readonly ulong[] Gear = MakeGear();

    /// <summary>Splits <paramref name="input"/> into chunks, in order, reading it once through a 1 MiB buffer.</summary>
    public static void Split(Stream input, ChunkHandler onChunk, CancellationToken ct = default)
    {
        var buffer = new byte[4 * MaxSize];
        int start = 0, end = 0;
        long offset = 0;
        var eof = false;
        while (true)
        {
            if (!eof && end - start < MaxSize)
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
                    var n = input.Read(buffer, end, buffer.Length - end);
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
            var cut = Cut(buffer.AsSpan(start, Math.Min(end - start, MaxSize)));
            onChunk(offset, buffer.AsSpan(start, cut));
            offset += cut;
            start += cut;
        }
    }

    /// <summary>The length of the chunk that starts <paramref name="data"/> (all of it when shorter than the minimum).</summary>
    public static int Cut(ReadOnlySpan<byte> data)
    {
        var n = Math.Min(data.Length, MaxSize);
        if (n <= MinSize) return n;
        var normal = Math.Min(n, AvgSize);
        ulong fp = 0;
        var i = MinSize;
        for (; i < normal; i++)
        {
            fp = (fp << 1) + Gear[data[i]];
            if ((fp & MaskHard) == 0) return i + 1;
        }

        for (; i < n; i++)
        {
            fp = (fp << 1) + Gear[data[i]];
            if ((fp & MaskEasy) == 0) return i + 1;
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
