using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Patching.Manifests;

namespace Patching.Journal;

/// <summary>
/// A manifest's product and version without parsing the whole manifest: what <see cref="InstalledRecord.After"/>
/// needs for the patched row (computed on a background task while staging runs). A forward-only scan of the top-level properties, read the way
/// <see cref="ManifestCodec.Deserialize"/> reads them (exact, case-sensitive names; a repeated name keeps its last
/// value). Anything the scan does not recognise (not JSON, another codec, a missing or non-string value) falls back to
/// the codec itself, so the answer is always the codec's.
/// </summary>
internal static class ManifestIdentity
{
    public static (string Product, string Version) Read(byte[] manifestBytes)
    {
        if (TryScan(manifestBytes, out var product, out var version)) return (product, version);
        var manifest = ManifestCodec.Deserialize(manifestBytes);
        return (manifest.Product, manifest.Version);
    }

    private static bool TryScan(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out string? product, [NotNullWhen(true)] out string? version)
    {
        product = null;
        version = null;
        try
        {
            // Default reader options, as the deserializer's: no comments, no trailing commas, depth 64.
            var reader = new Utf8JsonReader(bytes);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var field = reader.ValueTextEquals("product"u8) ? 1 : reader.ValueTextEquals("version"u8) ? 2 : 0;
                reader.Read();
                if (field == 0)
                {
                    reader.Skip();
                    continue;
                }

                if (reader.TokenType != JsonTokenType.String) return false;
                if (field == 1) product = reader.GetString();
                else version = reader.GetString();
            }

            // The loop ends at the closing brace of a well-formed manifest; nothing but whitespace may follow it.
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) return false;
            return product is not null && version is not null;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
