using System.Collections.Concurrent;
using System.Security.Cryptography;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;

namespace Patching.Update;

/// <summary>The pieces of one version: its verified package, how the store keeps them, and where each will come from.</summary>
internal sealed record VersionPieces(PatchPackage Package, StoreLayoutInfo Store, PiecePlan Plan);

/// <summary>Bytes and pieces downloaded from the source and reused (from the install or an earlier run).</summary>
internal sealed record PieceCounts(long Downloaded, long Reused, int PiecesDownloaded, int PiecesReused);

/// <summary>
/// Makes every piece of a plan present and verified in the patch directory: those found in the install copied (read
/// again and hashed again: the file may have changed since), the rest downloaded several at a time, each frame decoded
/// into at most the piece's size and checked against its signed SHA-256.
/// </summary>
internal static class PieceFetcher
{
    /// <summary>Times one piece is fetched when the bytes hash otherwise (the transport's own retries come on top).</summary>
    private const int PieceAttempts = 2;

    public static async Task<PieceCounts> MaterializeAsync(UpdateRun run, VersionPieces pieces, CancellationToken ct)
    {
        var plan = pieces.Plan;
        var reused = plan.ReusedEarlier;
        var piecesReused = plan.PiecesEarlier;
        var changed = new ConcurrentBag<BlobEntry>();
        var bySha = pieces.Package.Manifest.Blobs.ToDictionary(b => b.Sha256, StringComparer.Ordinal);
        Parallelism.ForEach(plan.InInstall.GroupBy(kv => kv.Value.Path).ToList(), ct, group =>
        {
            foreach (var blob in CopyFromInstall(pieces.Package, bySha, group))
            {
                if (blob.Copied)
                {
                    Interlocked.Add(ref reused, blob.Entry.Size);
                    Interlocked.Increment(ref piecesReused);
                }
                else
                {
                    changed.Add(blob.Entry);
                }
            }
        });

        var remote = plan.Remote.Concat(changed).ToList();
        var downloaded = await DownloadAsync(run, pieces, remote, ct).ConfigureAwait(false);
        return new PieceCounts(downloaded, reused, remote.Count, piecesReused);
    }

    /// <summary>Copies the pieces located in one file of the install that still hash right; reports each piece and whether it was copied.</summary>
    private static List<(BlobEntry Entry, bool Copied)> CopyFromInstall(PatchPackage package, Dictionary<string, BlobEntry> bySha,
        IGrouping<string, KeyValuePair<string, (string Path, long Offset)>> group)
    {
        var results = new List<(BlobEntry, bool)>();
        using var handle = File.OpenHandle(group.Key);
        foreach (var (sha, (_, offset)) in group)
        {
            var blob = bySha[sha];
            var bytes = new byte[blob.Size];
            var intact = RandomAccess.Read(handle, bytes, offset) == blob.Size && Convert.ToHexStringLower(SHA256.HashData(bytes)) == sha;
            if (intact) DownloadFolder.WritePiece(package.BlobPath(blob), bytes);
            results.Add((blob, intact));
        }

        return results;
    }

    /// <summary>Downloads <paramref name="remote"/> several at a time, reporting progress; returns the stored bytes fetched.</summary>
    private static async Task<long> DownloadAsync(UpdateRun run, VersionPieces pieces, List<BlobEntry> remote, CancellationToken ct)
    {
        var store = pieces.Store;
        var total = remote.Sum(store.StoredSize);
        var progress = DownloadProgress.Start(run.Progress, run.Options.Apply.TimeProvider);
        long downloaded = 0;
        var done = 0;
        progress?.Report(new PatchProgress(PatchPhase.Downloading, 0, remote.Count, 0, total));
        await Parallel.ForEachAsync(remote, new ParallelOptions { MaxDegreeOfParallelism = run.Options.MaxParallelDownloads, CancellationToken = ct }, async (blob, token) =>
        {
            await FetchPieceAsync(run.Source, pieces, blob, token).ConfigureAwait(false);
            var bytesNow = Interlocked.Add(ref downloaded, store.StoredSize(blob));
            progress?.Report(new PatchProgress(PatchPhase.Downloading, Interlocked.Increment(ref done), remote.Count, bytesNow, total));
        }).ConfigureAwait(false);
        return downloaded;
    }

    /// <summary>Fetches one piece until its bytes hash to its signed SHA-256 (at most <see cref="PieceAttempts"/> times) and writes it.</summary>
    private static async Task FetchPieceAsync(IUpdateSource source, VersionPieces pieces, BlobEntry blob, CancellationToken ct)
    {
        var store = pieces.Store;
        var name = store.Name(blob);
        var stored = store.StoredSize(blob);
        for (var attempt = 1; ; attempt++)
        {
            var bytes = await source.ReadAsync(name, 0, checked((int)stored), ct).ConfigureAwait(false);
            if (Decode(store, blob, bytes, name) is { } raw && Convert.ToHexStringLower(SHA256.HashData(raw.Span)) == blob.Sha256)
            {
                DownloadFolder.WritePiece(pieces.Package.BlobPath(blob), raw.Span);
                return;
            }

            if (attempt >= PieceAttempts)
                throw new PatcherException(PatchErrorCode.DownloadCorrupt, $"piece {blob.Sha256} downloaded {attempt} times, never with its signed SHA-256", name);
        }
    }

    /// <summary>
    /// The piece's raw bytes from what the source sent, or null when they cannot be: a frame that is not valid zstd or
    /// decodes to another length (never more than the piece's size plus one byte is produced: a hostile frame cannot
    /// blow up memory), or a raw piece of another length.
    /// </summary>
    private static ReadOnlyMemory<byte>? Decode(StoreLayoutInfo store, BlobEntry blob, byte[] bytes, string name)
    {
        if (store.StoredSizes is null) return bytes.Length == blob.Size ? bytes : null;
        try
        {
            return ZstdPatch.Decompress(default, bytes, checked((int)blob.Size), name);
        }
        catch (PatcherException ex) when (ex.Code is PatchErrorCode.DeltaCorrupt or PatchErrorCode.DeltaOutputTooLong or PatchErrorCode.DeltaWindowTooLarge)
        {
            return null;
        }
    }
}
