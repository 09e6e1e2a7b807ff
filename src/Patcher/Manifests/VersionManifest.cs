using System.Buffers;
using MessagePack;
using static Patching.Manifests.MessagePackIo;

namespace Patching.Manifests;

/// <summary>One version of a product as a tree: what a patch that lists only changes is applied on top of.</summary>
internal sealed record VersionListing(string Product, string Version, IReadOnlyList<string> Directories, IReadOnlyList<TargetFile> Files)
{
    /// <summary>The target version any manifest (format 1 or 2, full package or delta) describes.</summary>
    public static VersionListing TargetOf(Manifest m) => new(m.Product, m.Version, m.Directories, m.Files);
}

/// <summary>
/// The version manifest: the canonical bytes of a <see cref="VersionListing"/>, one MessagePack map
/// <c>{format: 2, product, version, directories, files}</c> in that key order, files as <c>[path, size, sha256, flags]</c>
/// sorted ordinally. Its SHA-256 names a version's exact tree. It depends only on the tree, the product and the
/// version, so a builder that has the old tree and the applier that has any manifest of the installed version compute
/// the same bytes: that is how a patch refers to the installed version without repeating it. Shipped beside a patch as
/// <see cref="FileName"/> for installs whose journal does not record their version.
/// </summary>
internal static class VersionManifest
{
    /// <summary>The base version's manifest, optionally beside a patch that lists only changes.</summary>
    public const string FileName = "base.msgpack";

    private const string KFormat = "format", KProduct = "product", KVersion = "version", KDirectories = "directories", KFiles = "files";

    public static byte[] Serialize(VersionListing v)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(5);
        w.Write(KFormat);
        w.Write(MessagePackManifest.Format);
        w.Write(KProduct);
        w.Write(v.Product);
        w.Write(KVersion);
        w.Write(v.Version);
        w.Write(KDirectories);
        WriteStrings(ref w, v.Directories);
        w.Write(KFiles);
        WriteFiles(ref w, v.Files);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Hex SHA-256 of <see cref="Serialize"/>'s bytes.</summary>
    public static string Hash(VersionListing v) => ManifestCodec.Hash(Serialize(v));

    /// <summary>
    /// Reads version manifest bytes strictly (the key order of <see cref="Serialize"/>, nothing else, nothing after), so
    /// that only canonical bytes are accepted: reading then writing gives the same bytes.
    /// </summary>
    public static VersionListing Deserialize(ReadOnlyMemory<byte> bytes, string? path)
    {
        try
        {
            var r = new MessagePackReader(bytes);
            if (r.ReadMapHeader() != 5) throw Malformed("a version manifest is a map of 5 keys", path);
            Key(ref r, KFormat, path);
            if (r.ReadInt32() != MessagePackManifest.Format) throw Malformed("version manifest format is not 2", path);
            Key(ref r, KProduct, path);
            var product = ReadString(ref r);
            Key(ref r, KVersion, path);
            var version = ReadString(ref r);
            Key(ref r, KDirectories, path);
            var directories = ReadStrings(ref r);
            Key(ref r, KFiles, path);
            var files = ReadFiles(ref r);
            if (!r.End) throw Malformed("bytes follow the version manifest's map", path);
            return new VersionListing(product, version, directories, files);
        }
        catch (Exception ex) when (IsReadFailure(ex))
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"version manifest is malformed: {ex.Message}", path, ex);
        }
    }

    private static void Key(ref MessagePackReader r, string expected, string? path)
    {
        var key = ReadString(ref r);
        if (key != expected) throw Malformed($"version manifest has key '{Printable(key)}' where '{expected}' belongs", path);
    }
}
