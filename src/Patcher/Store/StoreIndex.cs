using System.Text.Json;
using System.Text.Json.Serialization;
using Patching.Manifests;
using Patching.Sources;
using ZstdSharp.Unsafe;

namespace Patching.Store;

/// <summary>
/// The signed index of one version in a release store (<c>versions/&lt;v&gt;/index.json</c>): how its pieces are stored
/// (each a zstd frame at <c>pieces/ab/&lt;sha&gt;.zst</c>, <see cref="StoredPiece.StoredSize"/> bytes long) and which format 2
/// deltas lead to it from older versions, with their size. It binds itself to the version's manifest by hash, so an index
/// cannot be paired with another manifest; it only says where bytes are and how many, and every piece is still checked
/// against the manifest's SHA-256 after decoding. A store without indexes (written before pieces were compressed) keeps
/// raw pieces at <c>blobs/ab/&lt;sha&gt;</c>, and the client reads those.
/// </summary>
internal sealed record StoreIndex
{
    /// <summary>The only piece encoding: one zstd frame per piece, with its content size in the header.</summary>
    public const string Zstd = "zstd";

    /// <summary>Largest index file accepted (about 80 bytes per piece: 800,000 pieces, some 50 GiB of content).</summary>
    public const int MaxBytes = 64 * 1024 * 1024;

    [JsonPropertyName("product")] public required string Product { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    [JsonPropertyName("manifestSha256")] public required string ManifestSha256 { get; init; }
    [JsonPropertyName("encoding")] public required string Encoding { get; init; }
    [JsonPropertyName("pieces")] public required IReadOnlyList<StoredPiece> Pieces { get; init; }
    [JsonPropertyName("deltas")] public required IReadOnlyList<StoredDelta> Deltas { get; init; }

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, StoreJsonContext.Default.StoreIndex);

    public static StoreIndex Parse(ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, StoreJsonContext.Default.StoreIndex)
                ?? throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} is empty", what);
        }
        catch (JsonException ex)
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} is not a valid store index: {ex.Message}", what, ex);
        }
    }

    /// <summary>
    /// Checks the index against the manifest it claims to describe: same product, version and manifest hash, a known
    /// encoding, exactly one entry per blob of the manifest, and no stored size a zstd frame of that piece could not have
    /// (at most zstd's compress bound), so a hostile index cannot make a client read more than a frame can be.
    /// </summary>
    public Dictionary<string, long> CheckAgainst(Manifest manifest, string manifestSha256, string what)
    {
        if (Encoding != Zstd)
            throw new PatcherException(PatchErrorCode.ManifestUnsupportedFormat, $"{what} stores pieces as '{Encoding}', which this version of Patcher cannot read (only '{Zstd}')", what);
        if (Product != manifest.Product || Version != manifest.Version || ManifestSha256 != manifestSha256)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{what} describes {Product} {Version} (manifest {ManifestSha256}), not the manifest fetched ({manifestSha256})", what);
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var p in Pieces)
        {
            if (!sizes.TryAdd(p.Sha256, p.StoredSize))
                throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} lists piece {p.Sha256} twice", what);
        }

        foreach (var blob in manifest.Blobs)
        {
            if (!sizes.TryGetValue(blob.Sha256, out var stored))
                throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{what} does not list piece {blob.Sha256} of the manifest", what);
            if (stored < 1 || stored > MaxFrameSize(blob.Size))
                throw new PatcherException(PatchErrorCode.LimitExceeded, $"{what} says piece {blob.Sha256} of {blob.Size} bytes is stored in {stored}, more than a zstd frame of it can be", what);
        }

        if (sizes.Count != manifest.Blobs.Count)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{what} lists {sizes.Count} pieces, the manifest {manifest.Blobs.Count}", what);
        foreach (var d in Deltas) _ = SourceNames.DeltaDir(Version, d.From);
        return sizes;
    }

    /// <summary>The largest zstd frame of <paramref name="size"/> bytes (ZSTD_compressBound).</summary>
    public static long MaxFrameSize(long size) => (long)Methods.ZSTD_compressBound((nuint)size);
}

/// <param name="Sha256">SHA-256 of the piece's raw bytes (its name in the manifest).</param>
/// <param name="StoredSize">Length of its zstd frame in the store.</param>
internal sealed record StoredPiece(
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("storedSize")] long StoredSize);

/// <param name="From">The version the delta starts from.</param>
/// <param name="Bytes">Its manifest, signature and payload together: what a client downloads to use it.</param>
internal sealed record StoredDelta(
    [property: JsonPropertyName("from")] string From,
    [property: JsonPropertyName("bytes")] long Bytes);
