using Patching.IO;
using Patching.Manifests;

namespace PatchTool.Infrastructure;

/// <summary>One base file that is not as the manifest expects.</summary>
internal sealed record BaseDifference(string Path, string Problem);

/// <summary>
/// Compares an install directory with a manifest's base list (path, size, SHA-256), without changing it.
/// Only the listed files are read: everything else in the install (saves, configs, mods) is the user's.
/// The manifest must already be validated, so every path is safe to join.
/// </summary>
internal static class BaseCheck
{
    public static (int Checked, IReadOnlyList<BaseDifference> Missing, IReadOnlyList<BaseDifference> Modified) Run(
        string installDir, Manifest manifest, CancellationToken ct)
    {
        var fs = FileOps.Instance;
        List<BaseDifference> missing = [], modified = [];
        var checkedDirs = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var b in manifest.Base)
        {
            ct.ThrowIfCancellationRequested();
            var dirProblem = CheckAncestors(installDir, b.Path, checkedDirs);
            if (dirProblem is not null)
            {
                missing.Add(new BaseDifference(b.Path, dirProblem));
                continue;
            }

            var full = PathRules.Join(installDir, b.Path);
            var info = fs.Stat(full);
            switch (info.Kind)
            {
                case EntryKind.Missing:
                    missing.Add(new BaseDifference(b.Path, "missing"));
                    continue;
                case EntryKind.File:
                    break;
                default:
                    modified.Add(new BaseDifference(b.Path, $"is a {info.Kind.ToString().ToLowerInvariant()}, not a regular file"));
                    continue;
            }

            if (info.Size != b.Size)
            {
                modified.Add(new BaseDifference(b.Path, $"expected {b.Size} bytes, found {info.Size}"));
                continue;
            }

            var hash = ContentHash.OfFile(full, ct);
            if (hash != b.Sha256)
                modified.Add(new BaseDifference(b.Path, $"expected sha256 {b.Sha256}, found {hash}"));
        }

        return (manifest.Base.Count, missing, modified);
    }

    /// <summary>Every directory on the way must be a real directory: a symlink could lead outside the install.</summary>
    private static string? CheckAncestors(string root, string relative, Dictionary<string, string?> cache)
    {
        var parent = PathRules.Parent(relative);
        if (parent.Length == 0) return null;
        if (cache.TryGetValue(parent, out var known)) return known;
        var problem = CheckAncestors(root, parent, cache);
        if (problem is null)
        {
            var kind = FileOps.Instance.Stat(PathRules.Join(root, parent)).Kind;
            problem = kind switch
            {
                EntryKind.Directory => null,
                EntryKind.Missing => $"directory '{parent}' is missing",
                _ => $"'{parent}' is a {kind.ToString().ToLowerInvariant()}, not a directory",
            };
        }

        cache[parent] = problem;
        return problem;
    }
}
