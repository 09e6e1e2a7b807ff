using System.Buffers;
using System.Security.Cryptography;

namespace Patching.IO;

/// <summary>Streaming SHA-256 helpers. One pass over the data: hashing happens while copying.</summary>
internal static class ContentHash
{
    public const int BufferSize = 1 << 20;

    public static string OfFile(string path, CancellationToken ct = default) => OfFile(FileOps.Instance, path, ct);

    public static string OfFile(IFileOps fs, string path, CancellationToken ct = default, Action<long>? onBytes = null)
    {
        using var s = fs.OpenRead(path);
        return OfStream(s, ct, onBytes);
    }

    /// <summary>
    /// How the entry at <paramref name="path"/> compares with a file of a manifest: not a regular file (or absent), another
    /// size or content, or the same. The size is compared first, so a file of another size is never read.
    /// </summary>
    public static FileMatch Compare(IFileOps fs, string path, long size, string sha256, CancellationToken ct = default, Action<long>? onBytes = null)
    {
        var info = fs.Stat(path);
        if (info.Kind != EntryKind.File) return FileMatch.Missing;
        return info.Size == size && OfFile(fs, path, ct, onBytes) == sha256 ? FileMatch.Same : FileMatch.Differs;
    }

    /// <summary>SHA-256 of the rest of <paramref name="s"/>; <paramref name="onBytes"/> hears each buffer's length as it is hashed.</summary>
    public static string OfStream(Stream s, CancellationToken ct = default, Action<long>? onBytes = null)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int n;
            while ((n = s.Read(buffer, 0, BufferSize)) > 0)
            {
                ct.ThrowIfCancellationRequested();
                hash.AppendData(buffer, 0, n);
                onBytes?.Invoke(n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// Copies at most <paramref name="maxBytes"/> + 1 bytes from <paramref name="source"/> to
    /// <paramref name="destination"/>, hashing them. The +1 lets the caller detect an over-long source
    /// without ever writing more than one extra byte's worth of reading.
    /// </summary>
    /// <remarks>
    /// A large copy (at least <see cref="PipelineThreshold"/>) overlaps its reads and hashing with its writes: while one
    /// buffer is written (and the kernel throttles the writer to the disk's pace once enough pages are dirty), the next
    /// is read and hashed on this thread. One thread would wait for the disk and the hash in turn; two overlap them, so
    /// a large file costs about the slower of the two. Writes stay in order: a buffer is read into again only after its
    /// previous write has returned.
    /// </remarks>
    public static (long Length, string Sha256) CopyAndHash(Stream source, Stream destination, long maxBytes,
        Action<long>? onBytes, CancellationToken ct)
    {
        var overlap = maxBytes >= PipelineThreshold && destination != Stream.Null;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[][] buffers = overlap
            ? [ArrayPool<byte>.Shared.Rent(BufferSize), ArrayPool<byte>.Shared.Rent(BufferSize)]
            : [ArrayPool<byte>.Shared.Rent(BufferSize)];
        var writing = Task.CompletedTask;
        long total = 0;
        var current = 0;
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var want = (int)Math.Min(BufferSize, maxBytes + 1 - total);
                if (want <= 0) break;
                var buffer = buffers[current];
                var n = source.Read(buffer, 0, want);
                if (n == 0) break;
                total += n;
                if (total > maxBytes) break;
                hash.AppendData(buffer, 0, n);
                if (!overlap)
                {
                    destination.Write(buffer, 0, n);
                    onBytes?.Invoke(n);
                    continue;
                }

                writing.GetAwaiter().GetResult(); // the previous write, from the other buffer, has finished
                writing = Task.Run(() =>
                {
                    destination.Write(buffer, 0, n);
                    onBytes?.Invoke(n);
                }, CancellationToken.None);
                current ^= 1;
            }

            writing.GetAwaiter().GetResult();
        }
        finally
        {
            // On a failure above, the write in flight must finish before its buffer goes back to the pool.
            try
            {
                writing.Wait(CancellationToken.None);
            }
            catch (AggregateException)
            {
                // Already rethrown above, or superseded by the failure that brought us here.
            }

            foreach (var b in buffers) ArrayPool<byte>.Shared.Return(b);
        }

        return (total, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    /// <summary>Copies at least this large overlap reading and hashing with writing (see <see cref="CopyAndHash"/>).</summary>
    public const long PipelineThreshold = 16L << 20;
}

/// <summary>The answer of <see cref="ContentHash.Compare"/>.</summary>
internal enum FileMatch
{
    Missing,
    Differs,
    Same,
}
