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
internal sealed class ApplyPlan
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
    /// which places them into the install's directories itself). The latter creates only the staged files' parents:
    /// at 100k files in 2,000 directories, making every directory cost 150–280 ms on a file system slow to create inodes.
    /// </summary>
    public bool StagesWholeTree { get; init; } = true;

    /// <summary>
    /// The walk of the install this plan was made from, when it was made from one: the layered commit plans its
    /// operations from it instead of walking the install a second time (at 100k files a walk costs about 0.3 s).
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

    private const int ProgressBatch = 256;

    /// <summary>
    /// Builds the plan and checks the base: every file the patch reuses must be a regular file of the
    /// declared size (and hash, when <paramref name="fullHash"/>), reached without passing a symlink.
    /// <c>namesIgnoreCase</c>: whether the install's file system compares names without case
    /// (<see cref="PathRules.PlatformIgnoresCase"/> by default). There, install entries are taken under the manifests'
    /// spelling (<see cref="SpellAsKnown"/>). <paramref name="progress"/> hears the Verifying phase's file checks as
    /// they go: with <paramref name="fullHash"/> each one reads a whole file, the longest wait before anything changes.
    /// </summary>
    public static ApplyPlan Create(IFileOps fs, string installDir, Manifest manifest, Manifest? installed, bool fullHash, CancellationToken ct,
        bool? namesIgnoreCase = null, IProgress<PatchProgress>? progress = null)
    {
        // What the old version owns: the patch's base list, plus what the journal says is installed.
        var owned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in manifest.Base) owned.Add(b.Path);
        foreach (var d in manifest.BaseDirectories) owned.Add(d);
        if (installed is not null)
        {
            foreach (var f in installed.Files) owned.Add(f.Path);
            foreach (var d in installed.Directories) owned.Add(d);
        }

        var targetPaths = TargetPaths(manifest);
        // The install's identity marker is Patcher's: neither a file of a version nor the player's.
        var entries = TreeOps.Walk(fs, installDir, PathRules.IsInstallMarker);
        if (namesIgnoreCase ?? PathRules.PlatformIgnoresCase) entries = SpellAsKnown(entries, owned, targetPaths);
        var byPath = entries.ToDictionary(e => e.Path, StringComparer.Ordinal);

        // Base files by content. Most hashes occur once: one dictionary entry each, and a list only for content that
        // several base files share (building a list per hash cost a list per file at 100k files).
        var firstBySha = new Dictionary<string, BaseFile>(manifest.Base.Count, StringComparer.Ordinal);
        Dictionary<string, List<BaseFile>>? moreBySha = null;
        foreach (var b in manifest.Base)
        {
            if (firstBySha.TryAdd(b.Sha256, b)) continue;
            moreBySha ??= new Dictionary<string, List<BaseFile>>(StringComparer.Ordinal);
            if (!moreBySha.TryGetValue(b.Sha256, out var more)) moreBySha[b.Sha256] = more = [];
            more.Add(b);
        }

        // A base file may be asked about twice only when its content is shared; remembered so it is hashed once.
        var checkedBase = new Dictionary<string, bool>(StringComparer.Ordinal);
        bool BaseFileIntact(BaseFile b)
        {
            if (fullHash && checkedBase.TryGetValue(b.Path, out var known)) return known;
            var ok = byPath.TryGetValue(b.Path, out var e) && e.Info.Kind == EntryKind.File && e.Info.Size == b.Size
                     && (!fullHash || ContentHash.OfFile(fs, PathRules.Join(installDir, b.Path), ct) == b.Sha256);
            if (fullHash) checkedBase[b.Path] = ok;
            return ok;
        }

        bool Reusable(BaseFile b, TargetFile f) => b.Size == f.Size && BaseFileIntact(b);

        // Content obtainable without the base file of that content: shipped as a blob, or (format 2) rebuilt from a recipe.
        var blobs = manifest.Blobs.Select(b => b.Sha256).Concat(manifest.Recipes.Select(r => r.Sha256)).ToHashSet(StringComparer.Ordinal);
        var sources = new List<FileSource>(manifest.Files.Count);
        long bytesToWrite = 0;
        var filesChecked = 0;
        foreach (var f in manifest.Files)
        {
            ct.ThrowIfCancellationRequested();
            // A size check is a dictionary look-up, so those are reported in batches; a hash check reads the file.
            if (progress is not null && (fullHash || filesChecked % ProgressBatch == 0))
                progress.Report(new PatchProgress(PatchPhase.Verifying, filesChecked, manifest.Files.Count, 0, 0) { CurrentItem = f.Path });
            filesChecked++;
            string? reuse = null;
            if (f.Parts.Count == 1 && firstBySha.TryGetValue(f.Sha256, out var first))
            {
                // Prefer the file at the same path; any intact base file with the same content will do, in base order.
                var more = moreBySha?.GetValueOrDefault(f.Sha256);
                var samePath = first.Path == f.Path ? first : more?.Find(b => b.Path == f.Path);
                if (samePath is not null && Reusable(samePath, f)) reuse = samePath.Path;
                if (reuse is null && !ReferenceEquals(first, samePath) && Reusable(first, f)) reuse = first.Path;
                if (reuse is null && more is not null)
                {
                    foreach (var b in more)
                    {
                        if (!ReferenceEquals(b, samePath) && Reusable(b, f))
                        {
                            reuse = b.Path;
                            break;
                        }
                    }
                }

                if (reuse is null && !blobs.Contains(f.Sha256))
                {
                    throw new PatcherException(PatchErrorCode.BaseMismatch,
                        $"'{first.Path}' does not match the version this patch expects ({manifest.FromVersion}); it is missing or was modified. Repair the install or use a full package",
                        first.Path);
                }
            }
            else if (f.Parts.Any(p => !blobs.Contains(p.Sha256)))
            {
                throw new PatcherException(PatchErrorCode.ManifestMalformed, $"multi-part reuse of base content is not supported in format 1 ('{f.Path}')", f.Path);
            }

            if (reuse is null) bytesToWrite += f.Size;
            sources.Add(new FileSource(f, reuse, reuse is null ? default : byPath[reuse].Info));
        }
        progress?.Report(new PatchProgress(PatchPhase.Verifying, filesChecked, manifest.Files.Count, 0, 0));

        // A user entry below a path that becomes a file (a directory of the old version replaced by a file) cannot
        // be staged in place; the post-commit sweep keeps it in the preserved folder instead.
        var newFiles = manifest.Files.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        var user = FindUserEntries(entries, owned, targetPaths).Where(e => !HasAncestorIn(e.Path, newFiles)).ToList();
        return new ApplyPlan
        {
            Manifest = manifest,
            Files = sources,
            UserEntries = user,
            OldVersionPaths = owned,
            BytesToWrite = bytesToWrite,
            InstallEntries = entries,
            Walked = WalkedTree.Of(fs, installDir, entries),
            InstallDir = installDir,
        };
    }
}
