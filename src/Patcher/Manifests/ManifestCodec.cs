using System.Security.Cryptography;
using System.Text.Json;

namespace Patching.Manifests;

/// <summary>
/// The one seam between the manifest model and its wire formats: format 1 written by System.Text.Json (source
/// generated) and read by <see cref="ManifestReader"/>; format 2 by <see cref="MessagePackManifest"/>, and the journal's
/// record of a patch that lists only changes by <see cref="ComposedManifest"/>.
/// </summary>
internal static class ManifestCodec
{
    public const string ManifestFileName = "manifest.json";

    /// <summary>The format 2 manifest (MessagePack); a patch directory holds this or <see cref="ManifestFileName"/>, never both.</summary>
    public const string BinaryManifestFileName = "manifest.msgpack";
    public const string SignatureFileName = "manifest.sig";

    /// <summary>The manifest file name a manifest of <paramref name="format"/> is written to.</summary>
    public static string FileNameFor(int format) => format >= MessagePackManifest.Format ? BinaryManifestFileName : ManifestFileName;

    /// <summary>
    /// The manifest file of patch directory <paramref name="dir"/>: <see cref="BinaryManifestFileName"/> or
    /// <see cref="ManifestFileName"/>. Null when there is neither; a directory with both is refused (which one was signed?).
    /// </summary>
    public static string? Find(string dir)
    {
        var json = Path.Join(dir, ManifestFileName);
        var binary = Path.Join(dir, BinaryManifestFileName);
        var hasJson = File.Exists(json);
        var hasBinary = File.Exists(binary);
        if (hasJson && hasBinary)
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"patch directory '{dir}' holds both {ManifestFileName} and {BinaryManifestFileName}", dir);
        return hasBinary ? binary : hasJson ? json : null;
    }

    public static byte[] Serialize(Manifest manifest)
    {
        if (manifest.Format == MessagePackManifest.Format) return MessagePackManifest.Serialize(manifest);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJsonContext.Default.Manifest);
        // A trailing newline keeps the file friendly to diff tools; it is part of the signed bytes.
        var result = new byte[bytes.Length + 1];
        bytes.CopyTo(result, 0);
        result[^1] = (byte)'\n';
        return result;
    }

    /// <summary>
    /// Parses manifest bytes: format 1, format 2, or a <see cref="ComposedManifest"/> (format 2 listing only changes, kept
    /// with its base version's manifest). Format 2 bytes that list only changes cannot be read alone
    /// (<see cref="PatchErrorCode.BaseManifestMissing"/>). Throws <see cref="PatcherException"/> with <see cref="PatchErrorCode.ManifestMalformed"/>.</summary>
    public static Manifest Deserialize(ReadOnlySpan<byte> bytes, string? path = null)
    {
        // A MessagePack map cannot start a JSON text: the first byte tells the two formats apart.
        return MessagePackManifest.LooksLikeMessagePack(bytes) ? DeserializeBinary(bytes.ToArray(), path) : DeserializeJson(bytes, path);
    }

    /// <summary>Format 2 bytes: a whole manifest, or one listing only changes (<see cref="ComposedManifest"/>).</summary>
    private static Manifest DeserializeBinary(byte[] memory, string? path)
    {
        var declared = MessagePackManifest.PeekFormat(memory);
        if (declared is { } other && other != MessagePackManifest.Format)
        {
            throw new PatcherException(PatchErrorCode.ManifestUnsupportedFormat,
                $"manifest format {other} is not supported (this build reads formats {Manifest.CurrentFormat} and {MessagePackManifest.Format})", path);
        }

        return ComposedManifest.Is(memory) ? ComposedManifest.Deserialize(memory, path) : MessagePackManifest.Deserialize(memory, path);
    }

    /// <summary>Format 1 bytes: the format number is checked first, then the whole text is read.</summary>
    private static Manifest DeserializeJson(ReadOnlySpan<byte> bytes, string? path)
    {
        var format = PeekJsonFormat(bytes, path)
            ?? throw new PatcherException(PatchErrorCode.ManifestMalformed, "manifest has no integer 'format' field", path);

        if (format != Manifest.CurrentFormat)
        {
            throw new PatcherException(PatchErrorCode.ManifestUnsupportedFormat,
                $"manifest format {format} is not supported (this build reads format {Manifest.CurrentFormat})", path);
        }

        try
        {
            // The duplicated-key rule of the reader also covers a second "format" that the peek did not see.
            return ManifestReader.Read(bytes);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid UTF-8 surfaces when the reader decodes it.
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"manifest does not match format {format}: {ex.Message}", path, ex);
        }
    }

    /// <summary>
    /// The top-level "format" number of a JSON manifest, or null when it is missing or not an integer; read first so a
    /// future format gets a specific error, not a schema complaint. A forward-only reader, not a DOM: a 100k-file
    /// manifest is tens of MiB, and a document of it would cost several times that in memory just to read one number.
    /// </summary>
    private static int? PeekJsonFormat(ReadOnlySpan<byte> bytes, string? path)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new PatcherException(PatchErrorCode.ManifestMalformed, "manifest is not a JSON object", path);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isFormat = reader.ValueTextEquals("format"u8);
                reader.Read();
                if (isFormat) return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var f) ? f : null;
                reader.Skip();
            }

            return null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a property name escaping a lone surrogate, met while looking for "format".
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"manifest is not valid JSON: {ex.Message}", path, ex);
        }
    }

    public static byte[] SerializeEnvelope(SignatureEnvelope envelope) =>
        JsonSerializer.SerializeToUtf8Bytes(envelope, ManifestJsonContext.Default.SignatureEnvelope);

    public static SignatureEnvelope DeserializeEnvelope(ReadOnlySpan<byte> bytes, string? path = null)
    {
        try
        {
            var envelope = JsonSerializer.Deserialize(bytes, ManifestJsonContext.Default.SignatureEnvelope)
                ?? throw new PatcherException(PatchErrorCode.SignatureInvalid, "signature file is empty", path);
            if (envelope.Signatures.Any(s => s is null))
                throw new PatcherException(PatchErrorCode.SignatureInvalid, "signature file has a null entry", path);
            return envelope;
        }
        catch (JsonException ex)
        {
            throw new PatcherException(PatchErrorCode.SignatureInvalid, $"signature file is malformed: {ex.Message}", path, ex);
        }
    }

    /// <summary>Hex SHA-256 of the exact manifest bytes: the transaction's identity.</summary>
    public static string Hash(ReadOnlySpan<byte> manifestBytes) => Convert.ToHexStringLower(SHA256.HashData(manifestBytes));
}
