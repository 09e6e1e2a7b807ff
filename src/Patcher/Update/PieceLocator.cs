using System.Collections.Concurrent;
using System.Security.Cryptography;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;
using Patching.State;

namespace Patching.Update;

/// <summary>Where each piece of the version will come from: already in the download folder, in a file of the install, or the source.</summary>
internal sealed record PiecePlan(long ReusedEarlier, int PiecesEarlier, IReadOnlyDictionary<string, (string Path, long Offset)> InInstall,
    IReadOnlyList<BlobEntry> Remote, long RemoteStoredBytes);

/// <summary>
/// Finds every piece of the manifest that need not be downloaded: kept from an earlier run (hashed again, a bad one
/// deleted), or in a file of the install (the same content-defined chunking the store used finds it wherever it moved;
/// only its place is noted here, nothing is written until the route is chosen).
/// </summary>
internal static class PieceLocator
{
    public static PiecePlan Locate(string installDir, PatchPackage package, StoreLayoutInfo store, CancellationToken ct)
    {
        var blobs = package.Manifest.Blobs;
        long reused = 0;
        var piecesReused = 0;
        var missing = new ConcurrentDictionary<string, BlobEntry>(StringComparer.Ordinal);
        Parallelism.ForEach(blobs, ct, b =>
        {
            var path = package.BlobPath(b);
            if (File.Exists(path) && new FileInfo(path).Length == b.Size && ContentHash.OfFile(path, ct) == b.Sha256)
            {
                Interlocked.Add(ref reused, b.Size);
                Interlocked.Increment(ref piecesReused);
                return;
            }

            missing[b.Sha256] = b;
        });

        var located = missing.IsEmpty ? new ConcurrentDictionary<string, (string, long)>(StringComparer.Ordinal) : FindInInstall(installDir, missing, ct);
        var remote = missing.Values.OrderByDescending(b => b.Size).ThenBy(b => b.Sha256, StringComparer.Ordinal).ToList();
        return new PiecePlan(reused, piecesReused, located, remote, remote.Sum(store.StoredSize));
    }

    /// <summary>Cuts every file of the install as the store did and notes where each missing piece is, removing it from <paramref name="missing"/>.</summary>
    private static ConcurrentDictionary<string, (string, long)> FindInInstall(string installDir, ConcurrentDictionary<string, BlobEntry> missing, CancellationToken ct)
    {
        var located = new ConcurrentDictionary<string, (string, long)>(StringComparer.Ordinal);
        var files = TreeOps.Walk(FileOps.Instance, installDir, rel => rel == StateLayout.InsideStateName)
            .Where(e => e.Info.Kind == EntryKind.File && e.Info.Size > 0).ToList();
        Parallelism.ForEach(files, ct, e =>
        {
            var path = PathRules.Join(installDir, e.Path);
            using var input = FileOps.Instance.OpenRead(path);
            Chunker.Split(input, (offset, chunk) =>
            {
                if (missing.IsEmpty) return;
                var sha = Convert.ToHexStringLower(SHA256.HashData(chunk));
                if (missing.TryRemove(sha, out _)) located[sha] = (path, offset);
            }, ct);
        });
        return located;
    }
}
