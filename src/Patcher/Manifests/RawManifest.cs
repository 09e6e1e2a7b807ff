using MessagePack;
using static Patching.Manifests.MessagePackIo;
using static Patching.Manifests.MessagePackManifest;

namespace Patching.Manifests;

/// <summary>
/// A format 2 manifest map as read, before base files and contents are resolved against the trees: which keys it
/// holds decides whether it lists both trees (<see cref="Files"/>, <see cref="Base"/>) or only the changes from a
/// base version (<see cref="BaseManifest"/>, <see cref="Added"/>, <see cref="Changed"/>, <see cref="Removed"/>).
/// </summary>
internal sealed class RawManifest
{
    public string? Product { get; private set; }
    public string? Version { get; private set; }
    public string? FromVersion { get; private set; }
    public DateTimeOffset? Created { get; private set; }
    public DateTimeOffset? Expires { get; private set; }
    public List<string>? Directories { get; private set; }
    public List<TargetFile>? Files { get; private set; }
    public List<BaseFile>? Base { get; private set; }
    public List<string>? BaseDirectories { get; private set; }
    /// <summary>Hex SHA-256 of the base version's <see cref="VersionManifest"/>: set when the manifest lists only changes.</summary>
    public string? BaseManifest { get; private set; }
    /// <summary>Hex SHA-256 of the target version's <see cref="VersionManifest"/>, which the composed tree must hash to.</summary>
    public string? TargetManifest { get; private set; }
    public List<TargetFile>? Added { get; private set; }
    public List<TargetFile>? Changed { get; private set; }
    public List<string>? Removed { get; private set; }
    public long Payload { get; private set; }
    public List<(int File, List<RawOp> Ops)> Contents { get; private set; } = [];

    public static RawManifest Read(ReadOnlyMemory<byte> bytes, string? path)
    {
        var r = new MessagePackReader(bytes);
        var count = r.ReadMapHeader();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var m = new RawManifest();
        for (var i = 0; i < count; i++)
        {
            var key = ReadKey(ref r, seen, path);
            if (i == 0 && key != KFormat) throw Malformed("the first key is not 'format'", path);
            m.ReadValue(ref r, key, path);
        }

        if (!r.End) throw Malformed("bytes follow the manifest's map", path);
        foreach (var required in new[] { KProduct, KVersion, KCreated, KDirectories, KPayload, KContents })
            if (!seen.Contains(required)) throw Malformed($"manifest lacks a required key: '{required}'", path);
        // Either both trees whole, or the changes from a named base: never a mix a reader could take two ways.
        string[] trees = [KFiles, KBase, KBaseDirectories], changes = [KBaseManifest, KTargetManifest, KAdded, KChanged, KRemoved, KFromVersion];
        var listsChanges = seen.Contains(KBaseManifest);
        foreach (var key in listsChanges ? changes : trees)
            if (!seen.Contains(key)) throw Malformed($"manifest lacks a required key: '{key}'", path);
        foreach (var key in listsChanges ? trees : changes.SkipLast(1))
            if (seen.Contains(key)) throw Malformed($"manifest has '{key}', which a manifest {(listsChanges ? "listing only changes" : "listing both trees")} does not", path);
        return m;
    }

    private void ReadValue(ref MessagePackReader r, string key, string? path)
    {
        switch (key)
        {
            case KFormat:
                if (r.ReadInt32() != Format) throw Malformed("format is not 2", path);
                break;
            case KProduct: Product = ReadString(ref r); break;
            case KVersion: Version = ReadString(ref r); break;
            case KFromVersion: FromVersion = ReadString(ref r); break;
            case KCreated: Created = ReadTime(ref r); break;
            case KExpires: Expires = ReadTime(ref r); break;
            case KDirectories: Directories = ReadStrings(ref r); break;
            case KBaseDirectories: BaseDirectories = ReadStrings(ref r); break;
            case KFiles: Files = ReadFiles(ref r); break;
            case KBase:
            {
                var n = ReadArrayHeader(ref r);
                Base = new(n);
                for (var j = 0; j < n; j++)
                {
                    ExpectArray(ref r, 3, "a base file");
                    Base.Add(new BaseFile { Path = ReadString(ref r), Size = r.ReadInt64(), Sha256 = ReadHash(ref r) });
                }

                break;
            }

            case KBaseManifest: BaseManifest = ReadHash(ref r); break;
            case KTargetManifest: TargetManifest = ReadHash(ref r); break;
            case KAdded: Added = ReadFiles(ref r); break;
            case KChanged: Changed = ReadFiles(ref r); break;
            case KRemoved: Removed = ReadStrings(ref r); break;
            case KPayload: Payload = r.ReadInt64(); break;
            case KContents:
            {
                var n = ReadArrayHeader(ref r);
                Contents = new(n);
                for (var j = 0; j < n; j++)
                {
                    ExpectArray(ref r, 2, "a content");
                    var file = r.ReadInt32();
                    var opCount = ReadArrayHeader(ref r);
                    var ops = new List<RawOp>(opCount);
                    for (var k = 0; k < opCount; k++) ops.Add(RawOp.Read(ref r, path));
                    Contents.Add((file, ops));
                }

                break;
            }

            default:
                throw Malformed($"unknown key '{Printable(key)}'", path);
        }
    }

    /// <summary>The manifest of both trees as listed whole (a manifest without <see cref="BaseManifest"/>), contents not yet resolved.</summary>
    public Manifest Trees(string? path) => new()
    {
        Format = Format,
        Product = Product!,
        Version = Version!,
        FromVersion = FromVersion,
        Created = Created!.Value,
        Expires = Expires,
        Directories = Directories!,
        Files = Files!,
        Base = Base!,
        BaseDirectories = BaseDirectories!,
        Blobs = [],
    };
}

/// <summary>
/// A reference window as read: <see cref="Index"/> is a base file's index, or (with <see cref="InContent"/>) an index
/// in the manifest's contents.
/// </summary>
internal readonly record struct RawWindow(bool InContent, int Index, long Offset, long Length, string? Sha);

/// <summary>An operation as read: base files and contents by index, resolved once the base list is known.</summary>
/// <remarks>An empty <see cref="DeltaOp.Sha256"/> stands for nil until resolved.</remarks>
internal sealed record RawOp(DeltaOp Op, int BaseIndex, List<RawWindow> Refs)
{
    /// <summary>
    /// The operation with base files named by path and content windows by their content's SHA-256;
    /// <paramref name="contents"/> are the files the manifest's contents name, in order. A content window's index is
    /// resolved whatever it is when it names a listed content: whether that content comes earlier is the validator's
    /// rule (<see cref="PatchErrorCode.DeltaReferenceNotEarlier"/>).
    /// </summary>
    public DeltaOp Resolve(IReadOnlyList<BaseFile> baseFiles, IReadOnlyList<TargetFile> contents, ContentRecipe recipe, string? path)
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
                if (r.InContent) return ContentWindow(r, contents, recipe, path);
                var b = Base(r.Index);
                return new RefWindow(b.Path, r.Offset, r.Length, r.Sha ?? WholeBaseHash(b, r.Offset, r.Length));
            }).ToList(),
        };
    }

    /// <summary>A window of content <c>window.Index</c>; a nil hash stands for the whole content's.</summary>
    private static RefWindow ContentWindow(RawWindow window, IReadOnlyList<TargetFile> contents, ContentRecipe recipe, string? path)
    {
        if (window.Index < 0 || window.Index >= contents.Count)
            throw new PatcherException(PatchErrorCode.DeltaReferenceNotEarlier,
                $"a delta of content {recipe.Sha256} reads content {window.Index}, which the manifest does not list", path);
        var source = contents[window.Index];
        var sha = window.Sha ?? (window.Offset == 0 && window.Length == source.Size
            ? source.Sha256
            : throw Malformed($"a window of content {source.Sha256} has no hash but is not the whole content", path));
        return RefWindow.InContent(source.Sha256, window.Offset, window.Length, sha);
    }

    public static RawOp Read(ref MessagePackReader r, string? path)
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
                var refs = new List<RawWindow>(count);
                for (var i = 0; i < count; i++) refs.Add(ReadWindow(ref r, path));

                return new RawOp(op, -1, refs);
            }

            default:
                throw Malformed($"an operation has kind {kind} with {n} fields", path);
        }
    }

    /// <summary>
    /// <c>[base, offset, length, sha256]</c>, or <c>[1, content, offset, length, sha256]</c> for a window of a content
    /// the patch rebuilds; any other length or tag is malformed.
    /// </summary>
    private static RawWindow ReadWindow(ref MessagePackReader r, string? path)
    {
        var n = ReadArrayHeader(ref r);
        if (n == 4) return new RawWindow(false, r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), ReadHashOrNil(ref r));
        if (n != 5) throw Malformed($"a reference window has {n} fields", path);
        var tag = r.ReadInt32();
        if (tag != ContentWindowTag) throw Malformed($"a reference window has tag {tag}", path);
        return new RawWindow(true, r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), ReadHashOrNil(ref r));
    }
}
