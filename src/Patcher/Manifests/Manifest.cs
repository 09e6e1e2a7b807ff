using System.Text.Json.Serialization;

namespace Patching.Manifests;

/// <summary>
/// Manifest format v1: everything the applier needs to move an install from the base to the target.
/// The exact serialized bytes are what gets signed, so the codec never re-serializes a received manifest.
/// </summary>
internal sealed record Manifest
{
    public const int CurrentFormat = 1;

    [JsonPropertyName("format")] public int Format { get; init; } = CurrentFormat;
    [JsonPropertyName("product")] public required string Product { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    /// <summary>Absent for a full install package.</summary>
    [JsonPropertyName("fromVersion")] public string? FromVersion { get; init; }
    [JsonPropertyName("created")] public required DateTimeOffset Created { get; init; }
    [JsonPropertyName("expires")] public DateTimeOffset? Expires { get; init; }
    /// <summary>Every directory of the target, empty ones included, sorted ordinally.</summary>
    [JsonPropertyName("directories")] public required IReadOnlyList<string> Directories { get; init; }
    /// <summary>The complete target file list, sorted ordinally by path.</summary>
    [JsonPropertyName("files")] public required IReadOnlyList<TargetFile> Files { get; init; }
    /// <summary>The files the patch expects to find (empty for a full package), sorted ordinally by path.</summary>
    [JsonPropertyName("base")] public required IReadOnlyList<BaseFile> Base { get; init; }
    /// <summary>Directories of the base (so the applier knows which directories belong to the old version).</summary>
    [JsonPropertyName("baseDirectories")] public IReadOnlyList<string> BaseDirectories { get; init; } = [];
    /// <summary>The content the patch ships, keyed by the SHA-256 of the uncompressed bytes.</summary>
    [JsonPropertyName("blobs")] public required IReadOnlyList<BlobEntry> Blobs { get; init; }

    /// <summary>Format 2: how each content the base lacks as a whole file is rebuilt (none in format 1).</summary>
    [JsonIgnore] public IReadOnlyList<ContentRecipe> Recipes { get; init; } = [];

    /// <summary>Format 2: the length of the payload file the recipes' data operations read (0 in format 1).</summary>
    [JsonIgnore] public long PayloadSize { get; init; }

    /// <summary>
    /// Format 2: the base version as a tree, when the manifest on the wire lists only the changes from it (it is named
    /// there by its <see cref="VersionManifest"/> hash). Null when the manifest lists both trees whole.
    /// </summary>
    [JsonIgnore] public VersionListing? BaseVersion { get; init; }

    [JsonIgnore]
    public bool IsFullPackage => FromVersion is null;
}

internal sealed record TargetFile
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
    [JsonPropertyName("executable")] public bool Executable { get; init; }
    /// <summary>
    /// Ordered content-addressed parts whose concatenation is the file. v1 emits one part per file;
    /// the list shape lets chunked deltas arrive later without a format break.
    /// </summary>
    [JsonPropertyName("parts")] public required IReadOnlyList<ContentPart> Parts { get; init; }

    /// <summary>A file stored whole: one part holding all of its content (none for an empty file), as format 1 writes.</summary>
    public static TargetFile Whole(string path, long size, string sha256, bool executable = false) => new()
    {
        Path = path,
        Size = size,
        Sha256 = sha256,
        Executable = executable,
        Parts = size == 0 ? [] : [new ContentPart { Sha256 = sha256, Size = size }],
    };
}

internal sealed record ContentPart
{
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
}

internal sealed record BaseFile
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
}

internal sealed record BlobEntry
{
    /// <summary>SHA-256 of the uncompressed content (the content address).</summary>
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
    /// <summary>Length of the uncompressed content.</summary>
    [JsonPropertyName("size")] public required long Size { get; init; }
    /// <summary><c>none</c> or <c>br</c> (Brotli).</summary>
    [JsonPropertyName("compression")] public required string Compression { get; init; }
    /// <summary>Length of the blob file as stored in the patch directory.</summary>
    [JsonPropertyName("storedSize")] public required long StoredSize { get; init; }

    /// <summary>Relative path inside the patch directory: <c>blobs/ab/abcdef….br</c>.</summary>
    [JsonIgnore]
    public string RelativePath => $"blobs/{Sha256[..2]}/{Sha256}{(Compression == BlobCompression.Brotli ? ".br" : "")}";
}

internal static class BlobCompression
{
    public const string None = "none";
    public const string Brotli = "br";
}

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.Unspecified,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectRequiredConstructorParameters = true,
    RespectNullableAnnotations = true)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(SignatureEnvelope))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;

/// <summary>The detached signature file <c>manifest.sig</c>.</summary>
internal sealed record SignatureEnvelope
{
    [JsonPropertyName("signatures")] public required IReadOnlyList<SignatureEntry> Signatures { get; init; }
}

internal sealed record SignatureEntry
{
    /// <summary>Hex SHA-256 of the signer's SubjectPublicKeyInfo (DER). Selects the trusted key; the key decides the algorithm.</summary>
    [JsonPropertyName("keyId")] public required string KeyId { get; init; }
    /// <summary>Base64 signature over the exact bytes of manifest.json.</summary>
    [JsonPropertyName("signature")] public required string Signature { get; init; }
}
