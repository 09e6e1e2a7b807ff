using System.Buffers;
using MessagePack;
using static Patching.Manifests.MessagePackIo;

namespace Patching.Manifests;

/// <summary>
/// What the journal keeps for a patch that lists only changes: one MessagePack map <c>{format: 2, signed: bin,
/// base: bin}</c> holding the patch manifest's exact signed bytes and the base version's <see cref="VersionManifest"/>
/// bytes. It reads (<see cref="ManifestCodec.Deserialize"/>) as the composed manifest of both trees, so recovery, the
/// installed record and the next patch's base lookup need nothing but these bytes; and the signature stored with the
/// transaction still verifies, over <see cref="SignedPart"/>, with the base bytes tied to it by the hash the signed bytes
/// name. A patch directory never holds one: it is refused there as an unknown key.
/// </summary>
internal static class ComposedManifest
{
    private const string KSigned = "signed", KBase = "base";

    public static byte[] Serialize(byte[] signed, byte[] baseVersion)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(3);
        w.Write(MessagePackManifest.KFormat);
        w.Write(MessagePackManifest.Format);
        w.Write(KSigned);
        w.Write(signed);
        w.Write(KBase);
        w.Write(baseVersion);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Whether <paramref name="bytes"/> are a composed record: a map of three keys whose second is <c>signed</c>.</summary>
    public static bool Is(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            var r = new MessagePackReader(bytes);
            if (r.ReadMapHeader() != 3 || ReadString(ref r) != MessagePackManifest.KFormat) return false;
            r.Skip();
            return r.NextMessagePackType == MessagePackType.String && ReadString(ref r) == KSigned;
        }
        catch (Exception ex) when (IsReadFailure(ex))
        {
            return false;
        }
    }

    /// <summary>The composed manifest of both trees, the base bytes checked against the hash the signed bytes name.</summary>
    public static Manifest Deserialize(ReadOnlyMemory<byte> bytes, string? path)
    {
        var (signed, baseBytes) = Split(bytes, path);
        var raw = MessagePackManifest.ReadRaw(signed, path);
        if (raw.BaseManifest is null) throw Malformed("a composed manifest's signed part lists both trees", path);
        var hash = ManifestCodec.Hash(baseBytes);
        if (hash != raw.BaseManifest)
            throw new PatcherException(PatchErrorCode.BaseManifestMismatch, $"the base manifest kept with the patch has SHA-256 {hash}, the patch names {raw.BaseManifest}", path);
        return MessagePackManifest.Resolve(raw, VersionManifest.Deserialize(baseBytes, path), path);
    }

    /// <summary>
    /// The bytes a signature covers: those of <paramref name="bytes"/> themselves, or a composed record's signed part
    /// once its base part is checked against the hash that part names (a base swapped in beside a valid signature is
    /// <see cref="PatchErrorCode.BaseManifestMismatch"/>).
    /// </summary>
    public static byte[] SignedPart(byte[] bytes, string? path)
    {
        if (!MessagePackManifest.LooksLikeMessagePack(bytes) || !Is(bytes)) return bytes;
        _ = Deserialize(bytes, path);
        return Split(bytes, path).Signed;
    }

    private static (byte[] Signed, byte[] Base) Split(ReadOnlyMemory<byte> bytes, string? path)
    {
        try
        {
            var r = new MessagePackReader(bytes);
            if (r.ReadMapHeader() != 3) throw Malformed("a composed manifest is a map of 3 keys", path);
            if (ReadString(ref r) != MessagePackManifest.KFormat || r.ReadInt32() != MessagePackManifest.Format) throw Malformed("a composed manifest starts with format 2", path);
            if (ReadString(ref r) != KSigned) throw Malformed($"a composed manifest's second key is '{KSigned}'", path);
            var signed = ReadBinary(ref r);
            if (ReadString(ref r) != KBase) throw Malformed($"a composed manifest's third key is '{KBase}'", path);
            var baseBytes = ReadBinary(ref r);
            if (!r.End) throw Malformed("bytes follow the composed manifest's map", path);
            return (signed, baseBytes);
        }
        catch (Exception ex) when (IsReadFailure(ex))
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"composed manifest is malformed: {ex.Message}", path, ex);
        }
    }
}
