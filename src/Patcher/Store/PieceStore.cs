using System.Collections.Concurrent;
using System.Security.Cryptography;
using Patching.Building;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;

namespace Patching.Store;

/// <summary>A tree cut into pieces: each file's pieces in order, each distinct piece's stored (compressed) size, and what was new to the store.</summary>
internal sealed record TreePieces(IReadOnlyList<List<ContentPart>> Parts, IReadOnlyDictionary<string, long> StoredSizes, int Added, long AddedBytes);

/// <summary>
/// The store's <c>pieces/</c>: content-defined chunks of every published file, each a zstd frame named by the SHA-256 of
/// its raw bytes and written once, shared by every version that holds it.
/// </summary>
internal static class PieceStore
{
    /// <summary>Cuts every file of the tree into pieces, in parallel, and writes each piece the store does not hold yet.</summary>
    public static TreePieces Add(PublishRequest request, ScannedTree tree, CancellationToken ct)
    {
        var parts = new List<ContentPart>[tree.Files.Count];
        var added = 0;
        long addedBytes = 0;
        var stored = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        Parallelism.ForEach(Enumerable.Range(0, tree.Files.Count), ct, i =>
        {
            var list = new List<ContentPart>();
            if (tree.Files[i].Size > 0)
            {
                using var input = FileOps.Instance.OpenRead(PathRules.Join(request.TreeDir, tree.Files[i].Path));
                Chunker.Split(input, (_, chunk) =>
                {
                    var sha = Convert.ToHexStringLower(SHA256.HashData(chunk));
                    list.Add(new ContentPart { Sha256 = sha, Size = chunk.Length });
                    if (stored.ContainsKey(sha)) return;
                    var (size, isNew) = WriteIfAbsent(request.StoreDir, sha, chunk, request.Level);
                    if (stored.TryAdd(sha, size) && isNew)
                    {
                        Interlocked.Increment(ref added);
                        Interlocked.Add(ref addedBytes, chunk.Length);
                    }
                }, ct);
            }

            parts[i] = list;
        });
        return new TreePieces(parts, stored, added, addedBytes);
    }

    /// <summary>Stores the piece as a zstd frame unless the store has it. Returns the frame's length and whether it was written now.</summary>
    private static (long StoredSize, bool Written) WriteIfAbsent(string storeDir, string sha, ReadOnlySpan<byte> bytes, int level)
    {
        var path = Path.Join(storeDir, SourceNames.Piece(sha));
        if (File.Exists(path) && new FileInfo(path).Length > 0) return (new FileInfo(path).Length, false);
        var frame = ZstdPatch.Compress(default, bytes, level);
        StoreFiles.WriteAtomically(path, frame);
        return (frame.Length, true);
    }

    /// <summary>Rebuilds published <paramref name="version"/> into <paramref name="dir"/> from the store's pieces, each checked by SHA-256.</summary>
    public static void Materialize(string storeDir, string version, string dir, CancellationToken ct)
    {
        var manifestPath = Path.Join(storeDir, SourceNames.Manifest(version));
        var manifest = ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath), manifestPath);
        foreach (var d in manifest.Directories) Directory.CreateDirectory(PathRules.Join(dir, d));
        foreach (var file in manifest.Files)
        {
            ct.ThrowIfCancellationRequested();
            var path = PathRules.Join(dir, file.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            foreach (var part in file.Parts)
                output.Write(Read(storeDir, part.Sha256, part.Size).Span);
            // The executable bit is part of the version: a delta built from this tree names it in its base's hash.
            if (file.Executable && !OperatingSystem.IsWindows())
                File.SetUnixFileMode(output.SafeFileHandle, File.GetUnixFileMode(output.SafeFileHandle) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
    }

    /// <summary>A piece's raw bytes from the store: the zstd frame, or the raw piece of a store written before frames.</summary>
    private static ReadOnlyMemory<byte> Read(string storeDir, string sha256, long size)
    {
        var framePath = Path.Join(storeDir, SourceNames.Piece(sha256));
        var bytes = File.Exists(framePath)
            ? ZstdPatch.Decompress(default, File.ReadAllBytes(framePath), checked((int)size), framePath)
            : File.ReadAllBytes(Path.Join(storeDir, SourceNames.Blob(sha256)));
        if (bytes.Length != size || Convert.ToHexStringLower(SHA256.HashData(bytes.Span)) != sha256)
            throw new PatcherException(PatchErrorCode.DownloadCorrupt, $"the store's piece {sha256} does not hash to its name", framePath);
        return bytes;
    }
}
