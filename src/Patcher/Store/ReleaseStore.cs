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
    /// <summary>An older published version to build a format 2 delta from, stored beside this version.</summary>
    public string? DeltaFrom { get; init; }
    /// <summary>zstd level of the pieces and the delta (1..22).</summary>
    public int Level { get; init; } = PatchBuilder.DefaultLevel;
}

/// <param name="ManifestSha256">SHA-256 of the version's manifest bytes.</param>
/// <param name="Pieces">Distinct pieces the version consists of.</param>
/// <param name="PiecesAdded">Pieces the store did not hold before (the rest are shared with versions already published).</param>
/// <param name="BytesAdded">Bytes of those new pieces.</param>
/// <param name="TotalBytes">Raw bytes of all the version's distinct pieces.</param>
/// <param name="StoredBytes">Compressed bytes of all the version's distinct pieces (what a fresh install downloads).</param>
/// <param name="DeltaBytes">Bytes of the delta from <see cref="PublishRequest.DeltaFrom"/> (manifest, signature, payload), when one was built.</param>
internal sealed record PublishResult(string ManifestSha256, int Pieces, int PiecesAdded, long BytesAdded, long TotalBytes, long StoredBytes, long? DeltaBytes);

/// <summary>
/// A release store: a folder that a static web server, a CDN or a share serves as it is.
/// <code>
/// pieces/ab/abcd….zst                   pieces: a zstd frame each, named by the SHA-256 of the raw bytes, shared by every version
/// versions/&lt;v&gt;/manifest.json, .sig      a signed full package of version v whose files are lists of pieces
/// versions/&lt;v&gt;/index.json, .sig         the signed <see cref="StoreIndex"/>: each piece's stored size, the deltas to v
/// versions/&lt;v&gt;/deltas/&lt;from&gt;/          a signed format 2 patch from an older version (optional)
/// channels/&lt;c&gt;.json, .sig              the signed pointer to the latest version of channel c
/// </code>
/// Files are cut into content-defined chunks (<see cref="Chunker"/>), so a piece survives an insertion elsewhere in its
/// file and an update from any older version fetches only the pieces the install does not hold. A version's manifest is
/// an ordinary format 1 full package whose blobs are the raw pieces (so that a piece found in the install is the blob
/// byte for byte): the update decodes each downloaded frame, lays the pieces out as a patch directory and applies it
/// with the usual transaction. Compression is the store's business, named by the index, not the manifest's.
/// </summary>
internal static class ReleaseStore
{
    /// <summary>The payload file of a format 2 patch.</summary>
    public const string DeltaPayloadName = "payload.bin";

    public static PublishResult Publish(PublishRequest request, CancellationToken ct = default)
    {
        CheckRequest(request);
        var tree = TreeScanner.Scan(request.TreeDir, ct: ct);
        foreach (var path in tree.Files.Select(f => f.Path).Concat(tree.Directories))
        {
            var reason = PathRules.Check(path);
            if (reason is not null) throw new PatcherException(PatchErrorCode.UnsafePath, $"cannot publish '{path}': {reason}", path);
        }

        var pieces = PieceStore.Add(request, tree, ct);
        var manifest = BuildManifest(request, tree, pieces);
        var manifestSha = WriteManifest(request, manifest);
        var deltaBytes = request.DeltaFrom is null ? (long?)null : DeltaPublisher.Build(request, ct);
        var blobs = manifest.Blobs;
        StoreFiles.WriteIndex(request, manifestSha, blobs.Select(b => new StoredPiece(b.Sha256, pieces.StoredSizes[b.Sha256])).ToList(), deltaBytes);
        if (request.Channel is not null) StoreFiles.PointChannel(request, manifestSha);
        return new PublishResult(manifestSha, blobs.Count, pieces.Added, pieces.AddedBytes, blobs.Sum(b => b.Size), pieces.StoredSizes.Values.Sum(), deltaBytes);
    }

    /// <summary>Refuses a request before anything is written: bad names, level or versions, or a delta base the store lacks.</summary>
    private static void CheckRequest(PublishRequest request)
    {
        _ = PatchVersion.Parse(request.Version, "version");
        _ = SourceNames.Manifest(request.Version);
        if (request.Channel is not null) _ = SourceNames.Channel(request.Channel);
        if (request.Level is < 1 or > 22) throw new ArgumentException($"zstd level {request.Level} is out of range (1 to 22)");
        if (request.DeltaFrom is null) return;
        _ = SourceNames.DeltaDir(request.Version, request.DeltaFrom);
        if (PatchVersion.Parse(request.DeltaFrom, "delta-from version") >= PatchVersion.Parse(request.Version, "version"))
            throw new PatcherException(PatchErrorCode.NotNewer, $"version {request.Version} is not newer than the delta's base {request.DeltaFrom}");
        if (!File.Exists(Path.Join(request.StoreDir, SourceNames.Manifest(request.DeltaFrom))))
            throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no version {request.DeltaFrom} to build a delta from", request.StoreDir);
    }

    /// <summary>The version's manifest: a full package whose files are lists of pieces and whose blobs are the raw pieces, validated.</summary>
    private static Manifest BuildManifest(PublishRequest request, ScannedTree tree, TreePieces pieces)
    {
        var files = tree.Files.Select((f, i) => new TargetFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256, Executable = f.Executable, Parts = pieces.Parts[i] }).ToList();
        var blobs = pieces.Parts.SelectMany(p => p).DistinctBy(p => p.Sha256).OrderBy(p => p.Sha256, StringComparer.Ordinal)
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
        return manifest;
    }

    /// <summary>
    /// Signs and writes the manifest unless the version is already published, in which case the published one must have
    /// the same content and is kept as it is. Returns the hash of the manifest the store now holds.
    /// </summary>
    private static string WriteManifest(PublishRequest request, Manifest manifest)
    {
        var bytes = ManifestCodec.Serialize(manifest);
        var manifestPath = Path.Join(request.StoreDir, SourceNames.Manifest(request.Version));
        if (!File.Exists(manifestPath))
        {
            StoreFiles.WriteSigned(manifestPath, Path.Join(request.StoreDir, SourceNames.ManifestSignature(request.Version)), bytes, request.PrivateKeyPem);
            return ManifestCodec.Hash(bytes);
        }

        // A version is immutable once published: clients may hold its pieces and its manifest hash.
        var existing = ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath), manifestPath);
        if (!existing.Files.Select(f => (f.Path, f.Sha256, f.Executable)).SequenceEqual(manifest.Files.Select(f => (f.Path, f.Sha256, f.Executable))) ||
            !existing.Directories.SequenceEqual(manifest.Directories) || existing.Product != request.Product)
            throw new PatcherException(PatchErrorCode.ReleaseExists, $"version {request.Version} is already published with other content", manifestPath);
        return ManifestCodec.Hash(File.ReadAllBytes(manifestPath));
    }
}
