using System.Buffers;
using MessagePack;
using static Patching.Manifests.MessagePackIo;

namespace Patching.Manifests;

/// <summary>
/// Manifest format 2 on the wire: one MessagePack map, written and read with the primitive
/// <see cref="MessagePackWriter"/>/<see cref="MessagePackReader"/> only (no resolver: nothing is reflected or
/// generated at run time, so it trims and runs under AOT and Wine). Hashes are 32-byte binaries, each written once;
/// files and operations are positional arrays. The reader is strict: unknown or repeated keys, a wrong type, a wrong
/// array length, invalid UTF-8 or bytes after the map are refused as <see cref="PatchErrorCode.ManifestMalformed"/>.
/// A manifest either lists both trees whole, or (with <c>baseManifest</c>) only the changes from a base version named
/// by its <see cref="VersionManifest"/> hash (<see cref="ManifestChanges"/>). The layout is specified in docs/format.md.
/// </summary>
internal static class MessagePackManifest
{
    public const int Format = 2;

    // Map keys, in the order they are written (the reader takes any order but requires "format" first).
    internal const string KFormat = "format", KProduct = "product", KVersion = "version", KFromVersion = "fromVersion",
        KCreated = "created", KExpires = "expires", KDirectories = "directories", KFiles = "files", KBase = "base",
        KBaseDirectories = "baseDirectories", KPayload = "payload", KContents = "contents",
        KBaseManifest = "baseManifest", KTargetManifest = "targetManifest", KAdded = "added", KChanged = "changed", KRemoved = "removed";

    /// <summary>The first element of a 5-element reference window, which lies in a content rather than a base file.</summary>
    internal const int ContentWindowTag = 1;

    public static byte[] Serialize(Manifest m)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        var changesOnly = m.BaseVersion is not null;
        var fields = (changesOnly ? 12 : 10) + (m.FromVersion is null ? 0 : 1) + (m.Expires is null ? 0 : 1);
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

        if (changesOnly) ManifestChanges.Write(ref w, m);
        else WriteTrees(ref w, m);
        w.Write(KPayload);
        w.Write(m.PayloadSize);
        WriteContents(ref w, m, changesOnly ? ManifestChanges.ListedAgainst(m.Files, m.BaseVersion!.Files) : m.Files);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Both trees whole: directories, files, base files, base directories.</summary>
    private static void WriteTrees(ref MessagePackWriter w, Manifest m)
    {
        w.Write(KDirectories);
        WriteStrings(ref w, m.Directories);
        w.Write(KFiles);
        WriteFiles(ref w, m.Files);
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
    }

    /// <summary>The contents; each names its content by an index in <paramref name="files"/> (the target's, or the files added and changed).</summary>
    private static void WriteContents(ref MessagePackWriter w, Manifest m, IReadOnlyList<TargetFile> files)
    {
        // A recipe names its content by the index of the first file with it, and base files by index:
        // no hash or path is written twice.
        var fileIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < files.Count; i++) fileIndex.TryAdd(files[i].Sha256, i);
        var baseIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < m.Base.Count; i++) baseIndex[m.Base[i].Path] = i;
        // A hash the reader can derive is written as nil: an operation's when it is the recipe's only one (its output is
        // the content), a range's when it is a whole base file (its hash is the base file's).
        bool WholeBase(string path, long offset, long length) => offset == 0 && m.Base[baseIndex[path]].Size == length;
        var contentIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < m.Recipes.Count; i++) contentIndex.TryAdd(m.Recipes[i].Sha256, i);
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
                    continue;
                }

                w.WriteArrayHeader(6);
                w.Write((int)DeltaOpKind.Data);
                w.Write(op.Length);
                WriteHashOrNil(ref w, op.Sha256, r.Ops.Count == 1);
                w.Write(op.PayloadOffset);
                w.Write(op.StoredLength);
                w.WriteArrayHeader(op.Refs.Count);
                foreach (var window in op.Refs)
                {
                    if (window.Content is not null)
                    {
                        WriteContentWindow(ref w, window, m.Recipes, contentIndex);
                        continue;
                    }

                    w.WriteArrayHeader(4);
                    w.Write(baseIndex[window.Path]);
                    w.Write(window.Offset);
                    w.Write(window.Length);
                    WriteHashOrNil(ref w, window.Sha256, WholeBase(window.Path, window.Offset, window.Length));
                }
            }
        }
    }

    /// <summary><c>[1, content, offset, length, sha256]</c>: a window of the content rebuilt by entry <c>content</c>, nil hash when it is all of it.</summary>
    private static void WriteContentWindow(ref MessagePackWriter w, RefWindow window, IReadOnlyList<ContentRecipe> recipes, Dictionary<string, int> contentIndex)
    {
        var index = contentIndex[window.Content!];
        w.WriteArrayHeader(5);
        w.Write(ContentWindowTag);
        w.Write(index);
        w.Write(window.Offset);
        w.Write(window.Length);
        WriteHashOrNil(ref w, window.Sha256, window.Offset == 0 && window.Length == recipes[index].Size);
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
        catch (Exception ex) when (IsReadFailure(ex))
        {
            return null;
        }
    }

    /// <summary>
    /// Parses format 2 bytes. A manifest that lists only changes needs <paramref name="baseVersion"/>, the listing its
    /// <c>baseManifest</c> hash names (the caller has checked the hash); without it, it is refused with
    /// <see cref="PatchErrorCode.BaseManifestMissing"/>. Structural errors are <see cref="PatchErrorCode.ManifestMalformed"/>.
    /// </summary>
    public static Manifest Deserialize(ReadOnlyMemory<byte> bytes, string? path, VersionListing? baseVersion = null) =>
        Resolve(ReadRaw(bytes, path), baseVersion, path);

    /// <summary>The map as read, nothing resolved: enough to learn whether the manifest lists only changes, and from what.</summary>
    public static RawManifest ReadRaw(ReadOnlyMemory<byte> bytes, string? path)
    {
        try
        {
            return RawManifest.Read(bytes, path);
        }
        catch (Exception ex) when (IsReadFailure(ex))
        {
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"manifest does not match format {Format}: {ex.Message}", path, ex);
        }
    }

    /// <summary>The manifest <paramref name="raw"/> describes, composed over <paramref name="baseVersion"/> when it lists only changes.</summary>
    public static Manifest Resolve(RawManifest raw, VersionListing? baseVersion, string? path)
    {
        Manifest trees;
        if (raw.BaseManifest is null) trees = raw.Trees(path);
        else if (baseVersion is null)
            throw new PatcherException(PatchErrorCode.BaseManifestMissing,
                $"the manifest lists only the changes from {raw.FromVersion} (base manifest {raw.BaseManifest}), and that version's manifest is not at hand", path);
        else trees = ManifestChanges.Compose(raw, baseVersion, path);

        // A content is rebuilt only for a file whose content the base lacks as a whole file: one added or changed.
        var files = raw.BaseManifest is null ? trees.Files : ManifestChanges.Listed(raw.Added!, raw.Changed!);
        var contents = new List<TargetFile>(raw.Contents.Count);
        foreach (var (file, _) in raw.Contents)
        {
            if (file < 0 || file >= files.Count) throw Malformed($"a content names file {file}, which the manifest does not list", path);
            contents.Add(files[file]);
        }

        var recipes = new List<ContentRecipe>(raw.Contents.Count);
        for (var i = 0; i < raw.Contents.Count; i++)
        {
            var ops = raw.Contents[i].Ops;
            var recipe = new ContentRecipe { Sha256 = contents[i].Sha256, Size = contents[i].Size, Ops = ops.Select(o => o.Op).ToList() };
            recipes.Add(recipe with { Ops = ops.Select(o => o.Resolve(trees.Base, contents, recipe, path)).ToList() });
        }

        return trees with { Recipes = recipes, PayloadSize = raw.Payload };
    }
}
