using Patching.IO;
using Patching.Manifests;

namespace Patching.Building;

/// <summary>One file found by a scan: relative '/'-separated path, size, hash, executable bit.</summary>
internal sealed record ScannedFile(string Path, long Size, string Sha256, bool Executable);

/// <summary>A scanned tree, sorted ordinally so manifests are deterministic.</summary>
internal sealed record ScannedTree(IReadOnlyList<ScannedFile> Files, IReadOnlyList<string> Directories);

/// <summary>Walks a directory tree and hashes every file, in parallel.</summary>
internal static class TreeScanner
{
    /// <summary>
    /// Scans <paramref name="root"/>. Symlinks and special files are refused: a published tree must be
    /// plain files and directories, and a link could point outside the install.
    /// </summary>
    public static ScannedTree Scan(string root, Func<string, bool>? exclude = null, CancellationToken ct = default)
    {
        var fs = FileOps.Instance;
        if (fs.Stat(root).Kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.InstallNotFound, $"'{root}' is not a directory", root);

        var files = new List<(string Rel, EntryInfo Info)>();
        var dirs = new List<string>();
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            var rel = pending.Pop();
            foreach (var name in fs.ListNames(rel.Length == 0 ? root : PathRules.Join(root, rel)))
            {
                var childRel = rel.Length == 0 ? name : $"{rel}/{name}";
                // A tree published from an install leaves out the install's own identity marker.
                if (exclude?.Invoke(childRel) == true || PathRules.IsInstallMarker(childRel)) continue;
                var info = fs.Stat(PathRules.Join(root, childRel));
                switch (info.Kind)
                {
                    case EntryKind.Directory:
                        dirs.Add(childRel);
                        pending.Push(childRel);
                        break;
                    case EntryKind.File:
                        files.Add((childRel, info));
                        break;
                    default:
                        throw new PatcherException(PatchErrorCode.UnsafePath,
                            $"'{childRel}' is a symlink or special file; trees must hold plain files and directories", childRel);
                }
            }
        }

        var hashed = new ScannedFile[files.Count];
        Parallelism.ForEach(Enumerable.Range(0, files.Count), ct, i =>
        {
            var (rel, info) = files[i];
            hashed[i] = new ScannedFile(rel, info.Size, ContentHash.OfFile(PathRules.Join(root, rel), ct), info.Executable);
        });

        Array.Sort(hashed, (a, b) => string.CompareOrdinal(a.Path, b.Path));
        dirs.Sort(string.CompareOrdinal);
        return new ScannedTree(hashed, dirs);
    }
}
