using Patching.IO;
using Patching.Manifests;

namespace Patching.Staging;

/// <summary>Where one target file's content comes from.</summary>
/// <param name="File">The target file.</param>
/// <param name="ReuseFrom">Relative path of an install file with identical content, or null to write from blobs.</param>
/// <param name="ReuseInfo">What the plan's walk saw at <paramref name="ReuseFrom"/> (staging decides link or copy from it without another stat).</param>
internal sealed record FileSource(TargetFile File, string? ReuseFrom, EntryInfo ReuseInfo = default);

/// <summary>
/// Everything staging needs, decided before the first byte is written: where each target file comes from,
/// which install entries belong to the user, how many bytes will be written.
/// </summary>
internal sealed partial class ApplyPlan
{
    public required Manifest Manifest { get; init; }
    public required IReadOnlyList<FileSource> Files { get; init; }
    /// <summary>Install entries (files, symlinks, directories) that neither version describes: carried over untouched.</summary>
    public required IReadOnlyList<TreeEntry> UserEntries { get; init; }
    /// <summary>Paths owned by the old version (files and directories), for the post-commit sweep.</summary>
    public required IReadOnlySet<string> OldVersionPaths { get; init; }
    public required long BytesToWrite { get; init; }

    /// <summary>
    /// Whether staging builds the whole new tree (the swap) or only holds the files that change (the layered commit,
    /// which places them into the install's directories itself). The latter creates only the staged files' parents: on a
    /// file system slow to create inodes, making every directory of a large install is a noticeable share of staging.
    /// </summary>
    public bool StagesWholeTree { get; init; } = true;

    /// <summary>
    /// The walk of the install this plan was made from, when it was made from one: the layered commit plans its
    /// operations from it instead of walking the install a second time.
    /// </summary>
    public IReadOnlyList<TreeEntry>? InstallEntries { get; init; }

    /// <summary>The identities of the install's root and directories as walked: a reused file is linked only from them.</summary>
    public WalkedTree? Walked { get; init; }

    /// <summary>The install this plan was made for (format 2 rebuilds contents from its files).</summary>
    public string InstallDir { get; init; } = "";

    /// <summary>Entries that belong to neither the old nor the new version.</summary>
    public static List<TreeEntry> FindUserEntries(IEnumerable<TreeEntry> entries, IReadOnlySet<string> oldVersion, IReadOnlySet<string> newVersion) =>
        entries.Where(e => !oldVersion.Contains(e.Path) && !newVersion.Contains(e.Path)).ToList();

    /// <summary>True when a proper ancestor of <paramref name="path"/> is in <paramref name="set"/>.</summary>
    public static bool HasAncestorIn(string path, IReadOnlySet<string> set) => PathRules.Ancestors(path).Any(set.Contains);

    /// <summary>
    /// Where names ignore case, the install may spell a path differently from the manifests: a directory whose name
    /// changed only in case keeps its old spelling while it holds the player's files, and another installer may have
    /// written other spellings. The file system takes either spelling for the same entry, so an entry that no manifest
    /// names exactly, but one names without case, is taken under the manifest's spelling (and so are the entries below
    /// a directory taken so). Without it the base check refused such an install for good. Entries the manifests name
    /// exactly keep their spelling: a patch that renames <c>Maps</c> to <c>maps</c> lists both. If two entries would
    /// end up with one spelling (a case-sensitive directory on such a platform), the walk is kept as it was.
    /// </summary>
    /// <remarks>Compares with <see cref="StringComparer.OrdinalIgnoreCase"/>, as the layered commit does; it does not fold Unicode normalisation.</remarks>
    internal static List<TreeEntry> SpellAsKnown(List<TreeEntry> entries, IReadOnlySet<string> owned, IReadOnlySet<string> target)
    {
        Dictionary<string, string>? spelling = null; // made when an entry is first not named exactly (a player's file)
        var respelt = new Dictionary<string, string>(StringComparer.Ordinal); // directories: as walked -> as taken
        var result = new List<TreeEntry>(entries.Count);
        var seen = new HashSet<string>(entries.Count, StringComparer.Ordinal);
        var changed = false;
        foreach (var e in entries)
        {
            var slash = e.Path.LastIndexOf('/');
            var path = slash > 0 && respelt.TryGetValue(e.Path[..slash], out var parent) ? parent + e.Path[slash..] : e.Path;
            if (!owned.Contains(path) && !target.Contains(path))
            {
                if (spelling is null)
                {
                    spelling = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    // The old version's spelling first: the install holds the old version (a patch may rename only the case).
                    foreach (var name in owned.Concat(target)) spelling.TryAdd(name, name);
                }

                if (spelling.TryGetValue(path, out var known)) path = known;
            }

            if (!seen.Add(path)) return entries;
            if (path == e.Path) result.Add(e);
            else
            {
                changed = true;
                if (e.Info.Kind == EntryKind.Directory) respelt[e.Path] = path;
                result.Add(e with { Path = path });
            }
        }

        return changed ? result : entries;
    }

    /// <summary>Every file and directory path a manifest's target describes.</summary>
    public static HashSet<string> TargetPaths(Manifest m) =>
        new(m.Files.Select(f => f.Path).Concat(m.Directories), StringComparer.Ordinal);
}
