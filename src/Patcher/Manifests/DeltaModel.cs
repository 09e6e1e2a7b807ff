namespace Patching.Manifests;

/// <summary>
/// Format 2: how one content the base lacks as a whole file is rebuilt, as an ordered list of operations whose
/// outputs, concatenated, are the content. Keyed by the content's SHA-256 (that of the target file it was written
/// for): every target file with that content is placed from the one rebuilt copy.
/// </summary>
internal sealed record ContentRecipe
{
    public required string Sha256 { get; init; }
    public required long Size { get; init; }
    public required IReadOnlyList<DeltaOp> Ops { get; init; }
}

/// <summary>What a <see cref="DeltaOp"/> does.</summary>
internal enum DeltaOpKind
{
    /// <summary>Bytes taken from a base file, unchanged.</summary>
    Copy = 0,

    /// <summary>Bytes decoded from the patch's payload (zstd), optionally against a window of a base file as reference.</summary>
    Data = 1,
}

/// <summary>
/// One operation of a <see cref="ContentRecipe"/>. Every operation declares the SHA-256 of the bytes it outputs,
/// checked before they are written; a reference window declares its own SHA-256, checked before it is used.
/// </summary>
internal sealed record DeltaOp
{
    public required DeltaOpKind Kind { get; init; }

    /// <summary>Bytes this operation outputs.</summary>
    public required long Length { get; init; }

    /// <summary>SHA-256 of the bytes this operation outputs.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Copy: the base file read.</summary>
    public string? BasePath { get; init; }

    /// <summary>Copy: where the bytes start in <see cref="BasePath"/>.</summary>
    public long BaseOffset { get; init; }

    /// <summary>Data: where the zstd frame starts in the payload file.</summary>
    public long PayloadOffset { get; init; }

    /// <summary>Data: the zstd frame's length in the payload file.</summary>
    public long StoredLength { get; init; }

    /// <summary>Data: the reference windows, concatenated in this order into the frame's prefix (none: plain zstd).</summary>
    public IReadOnlyList<RefWindow> Refs { get; init; } = [];
}

/// <summary>
/// A window used as (part of) a data operation's reference, with its signed SHA-256: <see cref="Length"/> bytes from
/// <see cref="Offset"/> of base file <see cref="Path"/>, or, when <see cref="Content"/> is set, of a content the same
/// patch rebuilds by an earlier recipe (content only the new version has, such as several builds of one bundle).
/// </summary>
internal sealed record RefWindow(string Path, long Offset, long Length, string Sha256)
{
    /// <summary>
    /// The SHA-256 of the earlier recipe's content the window lies in; null: the window lies in base file
    /// <see cref="Path"/>. A content window's <see cref="Path"/> is empty.
    /// </summary>
    public string? Content { get; init; }

    /// <summary>A window of the content with SHA-256 <paramref name="content"/>, rebuilt earlier by the same patch.</summary>
    public static RefWindow InContent(string content, long offset, long length, string sha256) =>
        new("", offset, length, sha256) { Content = content };
}

/// <summary>Bounds of format 2 that both the builder and the applier hold to (documented in docs/format.md).</summary>
internal static class DeltaLimits
{
    /// <summary>Largest output of one data operation: what the applier holds in memory for it.</summary>
    public const int MaxDataLength = 16 * 1024 * 1024;

    /// <summary>Largest total of a data operation's reference windows: read and verified in memory before decoding against them.</summary>
    public const int MaxRefLength = 32 * 1024 * 1024;

    /// <summary>Most reference windows of one data operation.</summary>
    public const int MaxRefs = 4;

    /// <summary>Largest zstd frame of one data operation (incompressible output plus zstd's bound).</summary>
    public const int MaxStoredLength = MaxDataLength + (MaxDataLength / 128) + 1024;

    /// <summary>Largest zstd window the applier accepts (2^26 = 64 MiB covers reference plus output).</summary>
    public const int MaxWindowLog = 26;

    /// <summary>The payload file beside the manifest.</summary>
    public const string PayloadFileName = "payload.bin";
}
