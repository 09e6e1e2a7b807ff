using System.Buffers;
using System.Text;
using MessagePack;

namespace Patching.Manifests;

/// <summary>
/// Manifest format 2 on the wire: one MessagePack map, written and read with the primitive
/// <see cref="MessagePackWriter"/>/<see cref="MessagePackReader"/> only (no resolver: nothing is reflected or
/// generated at run time, so it trims and runs under AOT and Wine). Hashes are 32-byte binaries, each written once;
/// files and operations are positional arrays. The reader is strict: unknown or repeated keys, a wrong type, a wrong
/// array length, invalid UTF-8 or bytes after the map are refused as <see cref="PatchErrorCode.ManifestMalformed"/>.
/// The layout is specified in docs/format.md.
/// </summary>
internal static class MessagePackManifest
{
    public const int Format = 2;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Map keys, in the order they are written (the reader takes any order but requires "format" first).
    private const string KFormat = "format", KProduct = "product", KVersion = "version", KFromVersion = "fromVersion",
        KCreated = "created", KExpires = "expires", KDirectories = "directories", KFiles = "files", KBase = "base",
        KBaseDirectories = "baseDirectories", KPayload = "payload", KContents = "contents";

    public static byte[] Serialize(Manifest m)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        var fields = 10 + (m.FromVersion is null ? 0 : 1) + (m.Expires is null ? 0 : 1);
        w.WriteMapHeader(fields);
        w.Write(KFormat);
        w.Write(Format);
        w.Write(KProduct);
        w.Write(m.Product);
        w.Write(KVersion);
        w.Write(m.Version);
        if (m.FromVersion is not null)
        {
            w.Write(KFromVersion);
            w.Write(m.FromVersion);
        }

        w.Write(KCreated);
        w.Write(m.Created.ToUnixTimeSeconds());
        if (m.Expires is { } expires)
        {
            w.Write(KExpires);
            w.Write(expires.ToUnixTimeSeconds());
        }

        w.Write(KDirectories);
        WriteStrings(ref w, m.Directories);
        w.Write(KFiles);
        w.WriteArrayHeader(m.Files.Count);
        foreach (var f in m.Files)
        {
            w.WriteArrayHeader(4);
            w.Write(f.Path);
            w.Write(f.Size);
            WriteHash(ref w, f.Sha256);
            w.Write(f.Executable ? 1 : 0);
        }

        w.Write(KBase);
        w.WriteArrayHeader(m.Base.Count);
        foreach (var b in m.Base)
        {
            w.WriteArrayHeader(3);
            w.Write(b.Path);
            w.Write(b.Size);
            WriteHash(ref w, b.Sha256);
        }

        w.Write(KBaseDirectories);
        WriteStrings(ref w, m.BaseDirectories);
        w.Write(KPayload);
        w.Write(m.PayloadSize);

        // A recipe names its content by the index of the first target file with it, and base files by index:
        // no hash or path is written twice.
        var fileIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < m.Files.Count; i++) fileIndex.TryAdd(m.Files[i].Sha256, i);
        var baseIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < m.Base.Count; i++) baseIndex[m.Base[i].Path] = i;
        // A hash the reader can derive is written as nil: an operation's when it is the recipe's only one (its output is
        // the content), a range's when it is a whole base file (its hash is the base file's).
        bool WholeBase(string path, long offset, long length) => offset == 0 && m.Base[baseIndex[path]].Size == length;
        w.Write(KContents);
        w.WriteArrayHeader(m.Recipes.Count);
        foreach (var r in m.Recipes)
        {
            w.WriteArrayHeader(2);
            w.Write(fileIndex[r.Sha256]);
            w.WriteArrayHeader(r.Ops.Count);
            foreach (var op in r.Ops)
            {
                if (op.Kind == DeltaOpKind.Copy)
                {
                    w.WriteArrayHeader(5);
                    w.Write((int)DeltaOpKind.Copy);
                    w.Write(op.Length);
                    WriteHashOrNil(ref w, op.Sha256, r.Ops.Count == 1 || WholeBase(op.BasePath!, op.BaseOffset, op.Length));
                    w.Write(baseIndex[op.BasePath!]);
                    w.Write(op.BaseOffset);
                }
                else
                {
                    w.WriteArrayHeader(6);
                    w.Write((int)DeltaOpKind.Data);
                    w.Write(op.Length);
                    WriteHashOrNil(ref w, op.Sha256, r.Ops.Count == 1);
                    w.Write(op.PayloadOffset);
                    w.Write(op.StoredLength);
                    w.WriteArrayHeader(op.Refs.Count);
                    foreach (var window in op.Refs)
                    {
                        w.WriteArrayHeader(4);
                        w.Write(baseIndex[window.Path]);
                        w.Write(window.Offset);
                        w.Write(window.Length);
                        WriteHashOrNil(ref w, window.Sha256, WholeBase(window.Path, window.Offset, window.Length));
                    }
                }
            }
        }

        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Whether <paramref name="bytes"/> start like a format 2 manifest (a MessagePack map) rather than JSON.</summary>
    public static bool LooksLikeMessagePack(ReadOnlySpan<byte> bytes) =>
        bytes.Length > 0 && (bytes[0] is >= 0x80 and <= 0x8f or 0xde or 0xdf);

    /// <summary>The value of the leading "format" key, or null when the map does not start with an integer one.</summary>
    public static int? PeekFormat(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            var r = new MessagePackReader(bytes);
            if (r.ReadMapHeader() < 1 || ReadString(ref r) != KFormat) return null;
            return r.NextMessagePackType == MessagePackType.Integer ? r.ReadInt32() : null;
        }
        catch (Exception ex) when (ex is MessagePackSerializationException or EndOfStreamException or OverflowException or DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>Parses format 2 bytes. Structural errors throw <see cref="PatcherException"/> (<see cref="PatchErrorCode.ManifestMalformed"/>).</summary>
    public static Manifest Deserialize(ReadOnlyMemory<byte> bytes, string? path)
    {
        try
        {
            return Read(bytes, path);
        }
        catch (Exception ex) when (ex is MessagePackSerializationException or EndOfStreamException or OverflowException or DecoderFallbackException
                                       or ArgumentException or InvalidOperationException)
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"manifest does not match format {Format}: {ex.Message}", path, ex);
        }
    }

    private static Manifest Read(ReadOnlyMemory<byte> bytes, string? path)
    {
        var r = new MessagePackReader(bytes);
        var count = r.ReadMapHeader();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? product = null, version = null, fromVersion = null;
        DateTimeOffset? created = null, expires = null;
        List<string>? directories = null, baseDirectories = null;
        List<(string Path, long Size, string Sha, bool Exec)>? files = null;
        List<BaseFile>? baseFiles = null;
        long? payload = null;
        List<(int File, List<RawOp> Ops)>? contents = null;
        for (var i = 0; i < count; i++)
        {
            var key = ReadString(ref r);
            if (!seen.Add(key)) throw Malformed($"key '{key}' appears twice", path);
            if (i == 0 && key != KFormat) throw Malformed("the first key is not 'format'", path);
            switch (key)
            {
                case KFormat:
                    if (r.ReadInt32() != Format) throw Malformed("format is not 2", path);
                    break;
                case KProduct: product = ReadString(ref r); break;
                case KVersion: version = ReadString(ref r); break;
                case KFromVersion: fromVersion = ReadString(ref r); break;
                case KCreated: created = ReadTime(ref r); break;
                case KExpires: expires = ReadTime(ref r); break;
                case KDirectories: directories = ReadStrings(ref r); break;
                case KBaseDirectories: baseDirectories = ReadStrings(ref r); break;
                case KFiles:
                {
                    var n = ReadArrayHeader(ref r);
                    files = new(n);
                    for (var j = 0; j < n; j++)
                    {
                        ExpectArray(ref r, 4, "a file");
                        var p = ReadString(ref r);
                        var size = r.ReadInt64();
                        var sha = ReadHash(ref r);
                        var flags = r.ReadInt32();
                        if (flags is not (0 or 1)) throw Malformed($"file '{p}' has unknown flags {flags}", path);
                        files.Add((p, size, sha, flags == 1));
                    }

                    break;
                }

                case KBase:
                {
                    var n = ReadArrayHeader(ref r);
                    baseFiles = new(n);
                    for (var j = 0; j < n; j++)
                    {
                        ExpectArray(ref r, 3, "a base file");
                        baseFiles.Add(new BaseFile { Path = ReadString(ref r), Size = r.ReadInt64(), Sha256 = ReadHash(ref r) });
                    }

                    break;
                }

                case KPayload: payload = r.ReadInt64(); break;
                case KContents:
                {
                    var n = ReadArrayHeader(ref r);
                    contents = new(n);
                    for (var j = 0; j < n; j++)
                    {
                        ExpectArray(ref r, 2, "a content");
                        var file = r.ReadInt32();
                        var opCount = ReadArrayHeader(ref r);
                        var ops = new List<RawOp>(opCount);
                        for (var k = 0; k < opCount; k++) ops.Add(ReadOp(ref r, path));
                        contents.Add((file, ops));
                    }

                    break;
                }

                default:
                    throw Malformed($"unknown key '{Printable(key)}'", path);
            }
        }

        if (!r.End) throw Malformed("bytes follow the manifest's map", path);
        if (product is null || version is null || created is null || directories is null || files is null || baseFiles is null
            || baseDirectories is null || payload is null || contents is null)
            throw Malformed("manifest lacks a required key", path);

        var targetFiles = files.Select(f => TargetFile.Whole(f.Path, f.Size, f.Sha, f.Exec)).ToList();
        var recipes = new List<ContentRecipe>(contents.Count);
        foreach (var (file, ops) in contents)
        {
            if (file < 0 || file >= targetFiles.Count) throw Malformed($"a content names file {file}, which the manifest does not list", path);
            var target = targetFiles[file];
            var recipe = new ContentRecipe { Sha256 = target.Sha256, Size = target.Size, Ops = ops.Select(o => o.Op).ToList() };
            recipes.Add(recipe with { Ops = ops.Select(o => o.Resolve(baseFiles, recipe, path)).ToList() });
        }

        return new Manifest
        {
            Format = Format,
            Product = product,
            Version = version,
            FromVersion = fromVersion,
            Created = created.Value,
            Expires = expires,
            Directories = directories,
            Files = targetFiles,
            Base = baseFiles,
            BaseDirectories = baseDirectories,
            Blobs = [],
            Recipes = recipes,
            PayloadSize = payload.Value,
        };
    }

    /// <summary>An operation as read: base files by index, resolved once the base list is known.</summary>
    /// <remarks>An empty <see cref="DeltaOp.Sha256"/> stands for nil until resolved.</remarks>
    private sealed record RawOp(DeltaOp Op, int BaseIndex, List<(int File, long Offset, long Length, string? Sha)> Refs)
    {
        public DeltaOp Resolve(List<BaseFile> baseFiles, ContentRecipe recipe, string? path)
        {
            BaseFile Base(int index) => index >= 0 && index < baseFiles.Count
                ? baseFiles[index]
                : throw Malformed($"an operation names base file {index}, which the manifest does not list", path);
            // Nil hashes: the only operation's is the content's, a whole base file's range's is that file's.
            string WholeBaseHash(BaseFile b, long offset, long length) => offset == 0 && length == b.Size
                ? b.Sha256
                : throw Malformed($"a range of base file '{b.Path}' has no hash but is not the whole file", path);
            if (Op.Kind == DeltaOpKind.Copy)
            {
                var source = Base(BaseIndex);
                var sha = Op.Sha256.Length > 0 ? Op.Sha256 : recipe.Ops.Count == 1 ? recipe.Sha256 : WholeBaseHash(source, Op.BaseOffset, Op.Length);
                return Op with { BasePath = source.Path, Sha256 = sha };
            }

            if (Op.Sha256.Length == 0 && recipe.Ops.Count != 1) throw Malformed($"a data operation of content {recipe.Sha256} has no hash", path);
            return Op with
            {
                Sha256 = Op.Sha256.Length > 0 ? Op.Sha256 : recipe.Sha256,
                Refs = Refs.Select(r =>
                {
                    var b = Base(r.File);
                    return new RefWindow(b.Path, r.Offset, r.Length, r.Sha ?? WholeBaseHash(b, r.Offset, r.Length));
                }).ToList(),
            };
        }
    }

    private static RawOp ReadOp(ref MessagePackReader r, string? path)
    {
        var n = ReadArrayHeader(ref r);
        var kind = n >= 1 ? r.ReadInt32() : -1;
        switch (kind)
        {
            case (int)DeltaOpKind.Copy when n == 5:
            {
                var length = r.ReadInt64();
                var sha = ReadHashOrNil(ref r);
                var baseIndex = r.ReadInt32();
                var offset = r.ReadInt64();
                return new RawOp(new DeltaOp { Kind = DeltaOpKind.Copy, Length = length, Sha256 = sha ?? "", BaseOffset = offset }, baseIndex, []);
            }

            case (int)DeltaOpKind.Data when n == 6:
            {
                var op = new DeltaOp
                {
                    Kind = DeltaOpKind.Data, Length = r.ReadInt64(), Sha256 = ReadHashOrNil(ref r) ?? "", PayloadOffset = r.ReadInt64(), StoredLength = r.ReadInt64(),
                };
                var count = ReadArrayHeader(ref r);
                var refs = new List<(int, long, long, string?)>(count);
                for (var i = 0; i < count; i++)
                {
                    ExpectArray(ref r, 4, "a reference window");
                    refs.Add((r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), ReadHashOrNil(ref r)));
                }

                return new RawOp(op, -1, refs);
            }

            default:
                throw Malformed($"an operation has kind {kind} with {n} fields", path);
        }
    }

    private static void WriteStrings(ref MessagePackWriter w, IReadOnlyList<string> values)
    {
        w.WriteArrayHeader(values.Count);
        foreach (var v in values) w.Write(v);
    }

    private static void WriteHash(ref MessagePackWriter w, string hex) => w.Write(Convert.FromHexString(hex));

    private static void WriteHashOrNil(ref MessagePackWriter w, string hex, bool derivable)
    {
        if (derivable) w.WriteNil();
        else WriteHash(ref w, hex);
    }

    /// <summary>A hash, or null for nil (a hash the reader derives; see <see cref="Serialize"/>).</summary>
    private static string? ReadHashOrNil(ref MessagePackReader r) => r.TryReadNil() ? null : ReadHash(ref r);

    private static List<string> ReadStrings(ref MessagePackReader r)
    {
        var n = ReadArrayHeader(ref r);
        var list = new List<string>(n);
        for (var i = 0; i < n; i++) list.Add(ReadString(ref r));
        return list;
    }

    /// <summary>An array header whose count is bounded by the bytes left (each element takes at least one): no huge allocation from a lying header.</summary>
    private static int ReadArrayHeader(ref MessagePackReader r)
    {
        var n = r.ReadArrayHeader();
        if (n > r.Sequence.Length - r.Consumed) throw new MessagePackSerializationException($"an array declares {n} elements, more than the bytes left");
        return n;
    }

    private static void ExpectArray(ref MessagePackReader r, int length, string what)
    {
        var n = r.ReadArrayHeader();
        if (n != length) throw new MessagePackSerializationException($"{what} has {n} fields, {length} expected");
    }

    /// <summary>A string, decoded strictly: invalid UTF-8 is refused, not replaced.</summary>
    private static string ReadString(ref MessagePackReader r)
    {
        if (r.NextMessagePackType != MessagePackType.String) throw new MessagePackSerializationException($"a string was expected, not {r.NextMessagePackType}");
        var seq = r.ReadStringSequence() ?? throw new MessagePackSerializationException("a string was expected, not nil");
        return StrictUtf8.GetString(seq.IsSingleSegment ? seq.FirstSpan : seq.ToArray());
    }

    private static string ReadHash(ref MessagePackReader r)
    {
        if (r.NextMessagePackType != MessagePackType.Binary) throw new MessagePackSerializationException($"a 32-byte hash was expected, not {r.NextMessagePackType}");
        var seq = r.ReadBytes() ?? throw new MessagePackSerializationException("a hash was expected, not nil");
        if (seq.Length != 32) throw new MessagePackSerializationException($"a hash has {seq.Length} bytes, 32 expected");
        return Convert.ToHexStringLower(seq.ToArray());
    }

    private static DateTimeOffset ReadTime(ref MessagePackReader r) => DateTimeOffset.FromUnixTimeSeconds(r.ReadInt64());

    private static PatcherException Malformed(string message, string? path) => new(PatchErrorCode.ManifestMalformed, message, path);

    private static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
