using MessagePack;
using static Patching.Manifests.MessagePackIo;
using static Patching.Manifests.MessagePackManifest;

namespace Patching.Manifests;

/// <summary>
/// A format 2 manifest that lists only what changes: the base version is named by the SHA-256 of its
/// <see cref="VersionManifest"/>, and the manifest carries the target's directories, the files added and changed
/// (whole entries) and the paths removed. The target tree is composed from the base listing and those changes, and
/// must hash to the signed <c>targetManifest</c>: the composed manifest is then exactly the one listing both trees, so
/// planning, staging, the journal and recovery see no difference.
/// </summary>
internal static class ManifestChanges
{
    /// <summary>Writes the keys that replace the two tree listings: base and target hashes, directories, added, changed, removed.</summary>
    public static void Write(ref MessagePackWriter w, Manifest m)
    {
        var baseVersion = m.BaseVersion!;
        var (added, changed, removed) = Split(m.Files, baseVersion.Files);
        w.Write(KBaseManifest);
        WriteHash(ref w, VersionManifest.Hash(baseVersion));
        w.Write(KTargetManifest);
        WriteHash(ref w, VersionManifest.Hash(VersionListing.TargetOf(m)));
        w.Write(KDirectories);
        WriteStrings(ref w, m.Directories);
        w.Write(KAdded);
        WriteFiles(ref w, added);
        w.Write(KChanged);
        WriteFiles(ref w, changed);
        w.Write(KRemoved);
        WriteStrings(ref w, removed);
    }

    /// <summary>
    /// The target files compared with the base's by path: added (no base file there), changed (size, hash or executable
    /// bit differ), removed (base paths the target lacks). Each list in the target's (ordinal) order.
    /// </summary>
    public static (List<TargetFile> Added, List<TargetFile> Changed, List<string> Removed) Split(IReadOnlyList<TargetFile> target, IReadOnlyList<TargetFile> baseFiles)
    {
        var byPath = baseFiles.ToDictionary(f => f.Path, StringComparer.Ordinal);
        List<TargetFile> added = [], changed = [];
        foreach (var f in target)
        {
            if (!byPath.Remove(f.Path, out var b)) added.Add(f);
            else if (!SameEntry(f, b)) changed.Add(f);
        }

        var removed = byPath.Keys.ToList();
        removed.Sort(StringComparer.Ordinal);
        return (added, changed, removed);
    }

    /// <summary>The files added and changed, in path order: what a content's file index counts in.</summary>
    public static List<TargetFile> ListedAgainst(IReadOnlyList<TargetFile> target, IReadOnlyList<TargetFile> baseFiles)
    {
        var (added, changed, _) = Split(target, baseFiles);
        return Listed(added, changed);
    }

    /// <summary><paramref name="added"/> and <paramref name="changed"/> merged in path order.</summary>
    public static List<TargetFile> Listed(IReadOnlyList<TargetFile> added, IReadOnlyList<TargetFile> changed)
    {
        var files = added.Concat(changed).ToList();
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return files;
    }

    /// <summary>
    /// Composes the manifest of both trees from <paramref name="raw"/> (which lists only changes) and the base version
    /// its <c>baseManifest</c> names. Refused as <see cref="PatchErrorCode.ManifestMalformed"/>: a base of another product
    /// or version, a path listed twice or out of order, an added path the base has, a changed or removed path it lacks,
    /// a "change" equal to the base entry, and a composed target that does not hash to the signed <c>targetManifest</c>.
    /// </summary>
    public static Manifest Compose(RawManifest raw, VersionListing baseVersion, string? path)
    {
        if (baseVersion.Product != raw.Product || baseVersion.Version != raw.FromVersion)
            throw Malformed($"the base manifest describes {baseVersion.Product} {baseVersion.Version}, the patch updates {raw.Product} {raw.FromVersion}", path);
        var byPath = baseVersion.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        void Listed(string p, string list, IReadOnlyList<string> paths, int i)
        {
            if (i > 0 && string.CompareOrdinal(paths[i - 1], p) >= 0) throw Malformed($"'{list}' is not sorted, or lists '{Printable(p)}' twice", path);
            if (!listed.Add(p)) throw Malformed($"'{Printable(p)}' is listed twice among added, changed and removed", path);
        }

        var added = raw.Added!.Select(f => f.Path).ToList();
        for (var i = 0; i < added.Count; i++)
        {
            Listed(added[i], KAdded, added, i);
            if (byPath.ContainsKey(added[i])) throw Malformed($"added file '{Printable(added[i])}' is already in the base version", path);
        }

        var changed = raw.Changed!.Select(f => f.Path).ToList();
        for (var i = 0; i < changed.Count; i++)
        {
            Listed(changed[i], KChanged, changed, i);
            if (!byPath.TryGetValue(changed[i], out var b)) throw Malformed($"changed file '{Printable(changed[i])}' is not in the base version", path);
            if (SameEntry(raw.Changed![i], b)) throw Malformed($"changed file '{Printable(changed[i])}' is the same as in the base version", path);
        }

        var removed = raw.Removed!;
        for (var i = 0; i < removed.Count; i++)
        {
            Listed(removed[i], KRemoved, removed, i);
            if (!byPath.ContainsKey(removed[i])) throw Malformed($"removed file '{Printable(removed[i])}' is not in the base version", path);
        }

        var files = baseVersion.Files.Where(f => !listed.Contains(f.Path)).Concat(raw.Added!).Concat(raw.Changed!).ToList();
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        var target = new VersionListing(raw.Product!, raw.Version!, raw.Directories!, files);
        var hash = VersionManifest.Hash(target);
        if (hash != raw.TargetManifest)
            throw Malformed($"the target composed from the base version and the changes hashes to {hash}, the manifest signs {raw.TargetManifest}", path);
        return raw.Trees(path) with
        {
            Files = files,
            Base = baseVersion.Files.Select(f => new BaseFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256 }).ToList(),
            BaseDirectories = baseVersion.Directories,
            BaseVersion = baseVersion,
        };
    }

    private static bool SameEntry(TargetFile a, TargetFile b) => a.Size == b.Size && a.Sha256 == b.Sha256 && a.Executable == b.Executable;
}
