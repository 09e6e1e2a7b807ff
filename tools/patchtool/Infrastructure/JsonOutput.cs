using System.Text.Json;
using System.Text.Json.Serialization;

namespace PatchTool.Infrastructure;

// The documents `--json` prints on stdout. Property names are a contract for scripts: add, never rename.
// Every document has "ok"; a failed command prints an ErrorDocument (and the usual line on stderr). A command whose
// result is itself a failure (apply or recover when busy, verify-install finding damage) prints its own document with
// "ok": false and the same "error" object, so a script reads every failure the same way.

/// <param name="Code">The <c>PatchErrorCode</c> value; 0 for a failure outside the library; null for an interrupt.</param>
/// <param name="Name">The code's name, or the kind of failure (<c>Interrupted</c>, an exception type).</param>
internal sealed record ErrorInfo(int? Code, string Name, string Message, string? Path);

internal sealed record ErrorDocument(bool Ok, ErrorInfo Error)
{
    public ErrorDocument(ErrorInfo error)
        : this(false, error)
    {
    }
}

internal sealed record InspectDocument(
    bool Ok,
    string Patch,
    int Format,
    string Product,
    string Version,
    string? FromVersion,
    bool FullPackage,
    DateTimeOffset Created,
    DateTimeOffset? Expires,
    string ManifestSha256,
    InspectCounts Counts,
    InspectFiles Files,
    InspectDirectories Directories,
    InspectBytes Bytes,
    int Blobs,
    IReadOnlyList<string> SignatureKeyIds,
    IReadOnlyList<InspectContent>? Contents = null,
    InspectBase? Base = null);

/// <summary>
/// Format 2 patch listing only changes: the version manifests it names by SHA-256, and whether the base one was at hand
/// (<c>base.msgpack</c> beside the patch). Without it the files unchanged and the base files are unknown (counted 0),
/// and operations name base files by their index in the base version's file list (<c>#N</c>).
/// </summary>
internal sealed record InspectBase(string BaseManifestSha256, string TargetManifestSha256, bool BaseKnown);

/// <summary>Format 2: one content rebuilt from the base and the payload, and the target files that get it.</summary>
internal sealed record InspectContent(string Sha256, long Size, IReadOnlyList<string> Files, IReadOnlyList<InspectOperation> Operations);

/// <param name="Kind"><c>copy</c> (bytes of a base file) or <c>data</c> (a zstd frame of the payload, against its references).</param>
internal sealed record InspectOperation(
    string Kind, long Length, string Sha256, string? Base, long? BaseOffset, long? PayloadOffset, long? StoredLength, IReadOnlyList<InspectReference>? References);

/// <summary>A reference window: of base file <c>Base</c>, or (<c>Base</c> null) of the content rebuilt by entry <c>ContentIndex</c> of the contents, whose SHA-256 is <c>Content</c>.</summary>
internal sealed record InspectReference(string? Base, long Offset, long Length, string Sha256, int? ContentIndex, string? Content);

/// <summary>What <c>patchtool build --json</c> prints: where the patch is and what its bytes are made of.</summary>
/// <param name="ReusedBytes">Target bytes taken from the installed version (whole files and copied ranges).</param>
/// <param name="DeltaBytes">Download bytes of zstd frames compressed against the installed version (format 2).</param>
/// <param name="DeltaContentBytes">Target bytes those frames decode to.</param>
/// <param name="WholeBytes">Download bytes of content shipped without a reference: format 1's blobs, format 2's plain frames.</param>
/// <param name="WholeContentBytes">Target bytes that content decodes to.</param>
/// <param name="TotalBytes">What every install downloads: manifest, signature, payload or blobs.</param>
/// <param name="BaseManifestBytes">The old version's manifest beside a format 2 patch listing only changes (base.msgpack), downloaded only by installs whose journal does not record that version; 0 when absent.</param>
/// <param name="EarlierContentBytes">Of <paramref name="DeltaBytes"/>, those of frames that also reference a content the patch rebuilds earlier (format 2).</param>
internal sealed record BuildDocument(
    bool Ok,
    string Patch,
    int Format,
    int? Level,
    string Product,
    string Version,
    string? FromVersion,
    int TargetFiles,
    long TargetBytes,
    long ReusedBytes,
    long DeltaBytes,
    long DeltaContentBytes,
    long WholeBytes,
    long WholeContentBytes,
    long ManifestBytes,
    long SignatureBytes,
    long PayloadBytes,
    long TotalBytes,
    bool Signed,
    long BaseManifestBytes = 0,
    long EarlierContentBytes = 0);

internal sealed record InspectCounts(int Added, int Changed, int Removed, int Unchanged, int TargetFiles, int BaseFiles);

internal sealed record InspectFiles(IReadOnlyList<string> Added, IReadOnlyList<string> Changed, IReadOnlyList<string> Removed, IReadOnlyList<string> Unchanged);

internal sealed record InspectDirectories(IReadOnlyList<string> Added, IReadOnlyList<string> Removed);

/// <param name="Download">Sum of the blobs' stored sizes: what a launcher fetches.</param>
/// <param name="BlobContent">Sum of the blobs' uncompressed sizes.</param>
/// <param name="Target">Sum of the target files' sizes: the installed size afterwards.</param>
internal sealed record InspectBytes(long Download, long BlobContent, long Target);

internal sealed record VerifyDocument(
    bool Ok,
    string Patch,
    string Product,
    string Version,
    string? FromVersion,
    string ManifestSha256,
    IReadOnlyList<string> VerifiedKeyIds,
    int BlobsChecked,
    long BlobBytes,
    TargetCheckDocument? Target,
    ErrorInfo? Error);

internal sealed record TargetCheckDocument(string Path, int FilesChecked, IReadOnlyList<string> Missing, IReadOnlyList<string> Modified)
{
    public bool Matches => Missing.Count == 0 && Modified.Count == 0;
}

internal sealed record ApplyDocument(
    bool Ok,
    string Status,
    string? FromVersion,
    string? ToVersion,
    string? TransactionId,
    string Strategy,
    bool Resumed,
    int FilesWritten,
    int FilesReused,
    long BytesWritten)
{
    /// <summary>Why the apply did not happen (busy); null on success.</summary>
    public ErrorInfo? Error { get; init; }
}

internal sealed record RecoverDocument(bool Ok, string Outcome, string? TransactionId, string? InstalledVersion)
{
    /// <summary>Why nothing was recovered (busy); null on success.</summary>
    public ErrorInfo? Error { get; init; }
}

internal sealed record StatusDocument(bool Ok, string Target, string? Product, string? InstalledVersion, string? PendingTransactionId, string? PendingState, string? PreviousVersion)
{
    /// <summary>Another process is applying a patch right now (see <c>InstallStatus.UpdateInProgress</c>).</summary>
    public bool UpdateInProgress { get; init; }

    /// <summary>The version the journal recorded for a directory this install no longer is (see <c>InstallStatus.ReplacedInstallVersion</c>).</summary>
    public string? ReplacedInstallVersion { get; init; }
}

internal sealed record VerifyInstallDocument(bool Ok, string Target, string Version, int FilesChecked, IReadOnlyList<string> Missing, IReadOnlyList<string> Modified)
{
    /// <summary>VerifyFailed when a file is missing or modified; null when intact.</summary>
    public ErrorInfo? Error { get; init; }
}

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ErrorDocument))]
[JsonSerializable(typeof(InspectDocument))]
[JsonSerializable(typeof(VerifyDocument))]
[JsonSerializable(typeof(ApplyDocument))]
[JsonSerializable(typeof(RecoverDocument))]
[JsonSerializable(typeof(StatusDocument))]
[JsonSerializable(typeof(VerifyInstallDocument))]
[JsonSerializable(typeof(BuildDocument))]
[JsonSerializable(typeof(PatchTool.Commands.PublishDocument))]
[JsonSerializable(typeof(PatchTool.Commands.CheckDocument))]
[JsonSerializable(typeof(PatchTool.Commands.UpdateDocument))]
[JsonSerializable(typeof(PatchTool.Commands.RepairDocument))]
internal sealed partial class ToolJsonContext : JsonSerializerContext;

internal static class JsonOutput
{
    public static void Write<T>(TextWriter writer, T document)
    {
        var typeInfo = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)ToolJsonContext.Default.GetTypeInfo(typeof(T))!;
        writer.WriteLine(JsonSerializer.Serialize(document, typeInfo));
    }
}
