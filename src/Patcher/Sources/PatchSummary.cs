using Patching.Manifests;

namespace Patching.Sources;

/// <summary>What a manifest does to an install: the base list compared with the target list.</summary>
internal sealed record PatchSummary(
    IReadOnlyList<string> Added,
    IReadOnlyList<string> Changed,
    IReadOnlyList<string> Removed,
    IReadOnlyList<string> Unchanged,
    IReadOnlyList<string> DirectoriesAdded,
    IReadOnlyList<string> DirectoriesRemoved,
    long DownloadBytes,
    long BlobContentBytes,
    long TargetBytes)
{
    public static PatchSummary Of(Manifest m)
    {
        var baseFiles = m.Base.ToDictionary(b => b.Path, StringComparer.Ordinal);
        var targetPaths = m.Files.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        List<string> added = [], changed = [], unchanged = [];
        foreach (var f in m.Files)
        {
            if (!baseFiles.TryGetValue(f.Path, out var b)) added.Add(f.Path);
            else if (b.Sha256 == f.Sha256 && b.Size == f.Size) unchanged.Add(f.Path);
            else changed.Add(f.Path);
        }

        var removed = m.Base.Select(b => b.Path).Where(p => !targetPaths.Contains(p)).ToList();
        var baseDirs = m.BaseDirectories.ToHashSet(StringComparer.Ordinal);
        var targetDirs = m.Directories.ToHashSet(StringComparer.Ordinal);
        return new PatchSummary(
            Sorted(added), Sorted(changed), Sorted(removed), Sorted(unchanged),
            Sorted(m.Directories.Where(d => !baseDirs.Contains(d))),
            Sorted(m.BaseDirectories.Where(d => !targetDirs.Contains(d))),
            m.Blobs.Sum(b => b.StoredSize) + m.PayloadSize,
            m.Blobs.Sum(b => b.Size) + m.Recipes.Sum(r => r.Size),
            m.Files.Sum(f => f.Size));
    }

    public string FileCountsLine =>
        $"{Added.Count} added, {Changed.Count} changed, {Removed.Count} removed, {Unchanged.Count} unchanged";

    private static List<string> Sorted(IEnumerable<string> items)
    {
        var list = items.ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }
}
