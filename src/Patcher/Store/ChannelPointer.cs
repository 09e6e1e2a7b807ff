using System.Text.Json;
using System.Text.Json.Serialization;

namespace Patching.Store;

/// <summary>
/// A signed channel pointer, <c>channels/&lt;channel&gt;.json</c> with its signature <c>channels/&lt;channel&gt;.sig</c>: "the latest
/// version on this channel is <see cref="Version"/>, whose manifest hashes to <see cref="ManifestSha256"/>". The
/// <see cref="Sequence"/> grows with every publication and the pointer expires, so a replayed old pointer is refused
/// (the client remembers the highest sequence it accepted) and a frozen one stops being believed (freeze attack).
/// </summary>
internal sealed record ChannelPointer
{
    [JsonPropertyName("product")] public required string Product { get; init; }
    [JsonPropertyName("channel")] public required string Channel { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    [JsonPropertyName("manifestSha256")] public required string ManifestSha256 { get; init; }
    [JsonPropertyName("sequence")] public required long Sequence { get; init; }
    [JsonPropertyName("issued")] public required DateTimeOffset Issued { get; init; }
    [JsonPropertyName("expires")] public required DateTimeOffset Expires { get; init; }

    /// <summary>Largest pointer file accepted.</summary>
    public const int MaxBytes = 16 * 1024;

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, StoreJsonContext.Default.ChannelPointer);

    public static ChannelPointer Parse(ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, StoreJsonContext.Default.ChannelPointer)
                ?? throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} is empty", what);
        }
        catch (JsonException ex)
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} is not a valid channel pointer: {ex.Message}", what, ex);
        }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(ChannelPointer))]
[JsonSerializable(typeof(StoreIndex))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
