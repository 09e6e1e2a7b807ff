using System.Security.Cryptography;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;

namespace Patching.Store;

/// <summary>What <c>patchtool publish</c> asks for.</summary>
internal sealed record PublishRequest
{
    public required string StoreDir { get; init; }
    public required string TreeDir { get; init; }
    public required string Product { get; init; }
    public required string Version { get; init; }
    public required string PrivateKeyPem { get; init; }
    /// <summary>The channel to point at this version, or null to only add the version.</summary>
    public string? Channel { get; init; }
    /// <summary>How long the channel pointer is believed.</summary>
    public TimeSpan ChannelLifetime { get; init; } = TimeSpan.FromDays(30);
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <param name="ManifestSha256">SHA-256 of the version's manifest bytes.</param>
/// <param name="Pieces">Distinct pieces the version consists of.</param>
/// <param name="PiecesAdded">Pieces the store did not hold before (the rest are shared with versions already published).</param>
/// <param name="BytesAdded">Bytes of those new pieces.</param>
/// <param name="TotalBytes">Bytes of all the version's distinct pieces (what a fresh install downloads).</param>
internal sealed record PublishResult(string ManifestSha256, int Pieces, int PiecesAdded, long BytesAdded, long TotalBytes);

/// <summary>
/// A release store: a folder that a static web server, a CDN or a share serves as it is.
/// <code>
/// blobs/ab/abcd…                 pieces, named by the SHA-256 of their bytes, shared by every version
/// versions/&lt;v&gt;/manifest.json     a signed full package of version v whose files are lists of pieces
/// versions/&lt;v&gt;/manifest.sig
/// channels/&lt;c&gt;.json, .sig        the signed pointer to the latest version of channel c
/// </code>
/// Files are cut into content-defined chunks (<see cref="Chunker"/>), so a piece survives an insertion elsewhere in its
/// file and an update from any older version fetches only the pieces the install does not hold. A version's manifest is
/// an ordinary format 1 full package (each piece a blob, stored uncompressed so that a piece found in the install is the
/// blob byte for byte): the update lays the pieces out as a patch directory and applies it with the usual transaction.
/// </summary>
internal static class ReleaseStore
{
    public static PublishResult Publish(PublishRequest request, CancellationToken ct = default)
    {
        _ = PatchVersion.Parse(request.Version, "version");
        var manifestName = SourceNames.Manifest(request.Version);
        if (request.Channel is not null) _ = SourceNames.Channel(request.Channel);
        var tree = TreeScanner.Scan(request.TreeDir, ct: ct);
        foreach (var path in tree.Files.Select(f => f.Path).Concat(tree.Directories))
        {
            var reason = PathRules.Check(path);
            if (reason is not null) throw new PatcherException(PatchErrorCode.UnsafePath, $"cannot publish '{path}': {reason}", path);
        }

        // Pieces of every file, in parallel; each new piece written once under its hash.
        var parts = new List<ContentPart>[tree.Files.Count];
        var added = 0;
        long addedBytes = 0;
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
                    if (WriteBlobIfAbsent(request.StoreDir, sha, chunk))
                    {
                        Interlocked.Increment(ref added);
                        Interlocked.Add(ref addedBytes, chunk.Length);
                    }
                }, ct);
            }

            parts[i] = list;
        });

        var files = tree.Files.Select((f, i) => new TargetFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256, Executable = f.Executable, Parts = parts[i] }).ToList();
        var blobs = parts.SelectMany(p => p).DistinctBy(p => p.Sha256).OrderBy(p => p.Sha256, StringComparer.Ordinal)
            .Select(p => new BlobEntry { Sha256 = p.Sha256, Size = p.Size, Compression = BlobCompression.None, StoredSize = p.Size }).ToList();
        var manifest = new Manifest
        {
            Product = request.Product,
            Version = request.Version,
            Created = request.Time.GetUtcNow(),
            Directories = tree.Directories,
            Files = files,
            Base = [],
            Blobs = blobs,
        };
        ManifestValidator.Validate(manifest, ManifestLimits.Default);
        var bytes = ManifestCodec.Serialize(manifest);
        var manifestSha = ManifestCodec.Hash(bytes);

        var manifestPath = Path.Join(request.StoreDir, manifestName);
        if (File.Exists(manifestPath))
        {
            // A version is immutable once published: clients may hold its pieces and its manifest hash.
            var existing = ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath), manifestPath);
            if (!existing.Files.Select(f => (f.Path, f.Sha256, f.Executable)).SequenceEqual(files.Select(f => (f.Path, f.Sha256, f.Executable))) ||
                !existing.Directories.SequenceEqual(tree.Directories) || existing.Product != request.Product)
                throw new PatcherException(PatchErrorCode.ReleaseExists, $"version {request.Version} is already published with other content", manifestPath);
            bytes = File.ReadAllBytes(manifestPath);
            manifestSha = ManifestCodec.Hash(bytes);
        }
        else
        {
            var signature = SigningKeys.Sign(bytes, request.PrivateKeyPem);
            WriteAtomically(Path.Join(request.StoreDir, SourceNames.ManifestSignature(request.Version)),
                ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
            WriteAtomically(manifestPath, bytes);
        }

        if (request.Channel is not null) PointChannel(request, manifestSha);
        return new PublishResult(manifestSha, blobs.Count, added, addedBytes, blobs.Sum(b => b.Size));
    }

    /// <summary>Writes a new pointer for the channel, one sequence above the current one; refuses to point it at an older version.</summary>
    private static void PointChannel(PublishRequest request, string manifestSha)
    {
        var path = Path.Join(request.StoreDir, SourceNames.Channel(request.Channel!));
        long sequence = 1;
        if (File.Exists(path))
        {
            var current = ChannelPointer.Parse(File.ReadAllBytes(path), path);
            if (current.Product != request.Product)
                throw new PatcherException(PatchErrorCode.WrongProduct, $"channel {request.Channel} is for product '{current.Product}'", path);
            if (PatchVersion.Parse(current.Version, "version") > PatchVersion.Parse(request.Version, "version"))
                throw new PatcherException(PatchErrorCode.ReleaseExists, $"channel {request.Channel} already points at the newer {current.Version}", path);
            sequence = current.Sequence + 1;
        }

        var now = request.Time.GetUtcNow();
        var pointer = new ChannelPointer
        {
            Product = request.Product, Channel = request.Channel!, Version = request.Version, ManifestSha256 = manifestSha,
            Sequence = sequence, Issued = now, Expires = now + request.ChannelLifetime,
        };
        var bytes = pointer.Serialize();
        var signature = SigningKeys.Sign(bytes, request.PrivateKeyPem);
        // The signature first: a reader that sees the new pointer must find its signature (the old one fails to verify, and the read is retried).
        WriteAtomically(Path.Join(request.StoreDir, SourceNames.ChannelSignature(request.Channel!)), ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
        WriteAtomically(path, bytes);
    }

    private static bool WriteBlobIfAbsent(string storeDir, string sha, ReadOnlySpan<byte> bytes)
    {
        var path = Path.Join(storeDir, SourceNames.Blob(sha));
        if (File.Exists(path) && new FileInfo(path).Length == bytes.Length) return false;
        WriteAtomically(path, bytes);
        return true;
    }

    /// <summary>Writes to a temporary name and renames, so a server never serves half a file.</summary>
    private static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + StateTag() + ".tmp";
        using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            s.Write(bytes);
            s.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private static string StateTag() => State.StateLayout.RandomTag();
}
