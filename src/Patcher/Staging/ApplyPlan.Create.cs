using Patching.IO;
using Patching.Manifests;

namespace Patching.Staging;

/// <summary>What a plan is made from.</summary>
/// <param name="InstallDir">The install, walked and checked against the patch's base.</param>
/// <param name="Manifest">The new version's manifest.</param>
/// <param name="Installed">The installed version's manifest, when the journal knows it.</param>
internal sealed record PlanInput(string InstallDir, Manifest Manifest, Manifest? Installed)
{
    /// <summary>Check every reused base file by hash, not only by size.</summary>
    public bool FullHash { get; init; }

    /// <summary>
    /// Whether the install's file system compares names without case (<see cref="PathRules.PlatformIgnoresCase"/> by
    /// default). There, install entries are taken under the manifests' spelling (<see cref="ApplyPlan.SpellAsKnown"/>).
    /// </summary>
    public bool? NamesIgnoreCase { get; init; }
}

/// <summary>Making a plan: the install walked, every target file given a source, the base checked.</summary>
internal sealed partial class ApplyPlan
{
    private const int ProgressBatch = 256;

    /// <summary>
    /// Builds the plan and checks the base: every file the patch reuses must be a regular file of the declared size
    /// (and hash, with <see cref="PlanInput.FullHash"/>), reached without passing a symlink. <paramref name="progress"/>
    /// hears the Verifying phase's file checks as they go: with a full hash each one reads a whole file, the longest
    /// wait before anything changes.
    /// </summary>
    public static ApplyPlan Create(IFileOps fs, PlanInput input, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var manifest = input.Manifest;
        // What the old version owns: the patch's base list, plus what the journal says is installed.
        var owned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in manifest.Base) owned.Add(b.Path);
        foreach (var d in manifest.BaseDirectories) owned.Add(d);
        if (input.Installed is { } installed)
        {
            foreach (var f in installed.Files) owned.Add(f.Path);
            foreach (var d in installed.Directories) owned.Add(d);
        }

        var targetPaths = TargetPaths(manifest);
        // The install's identity marker is Patcher's: neither a file of a version nor the player's.
        var entries = TreeOps.Walk(fs, input.InstallDir, PathRules.IsInstallMarker);
        if (input.NamesIgnoreCase ?? PathRules.PlatformIgnoresCase) entries = SpellAsKnown(entries, owned, targetPaths);
        var byPath = entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
        var (sources, bytesToWrite) = ChooseSources(new BaseFiles(fs, input, byPath, ct), manifest, progress, ct);

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
            Walked = WalkedTree.Of(fs, input.InstallDir, entries),
            InstallDir = input.InstallDir,
        };
    }

    /// <summary>Where each target file comes from: an intact base file with its content, else the patch.</summary>
    private static (List<FileSource> Sources, long BytesToWrite) ChooseSources(BaseFiles bases, Manifest manifest, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        // Content obtainable without the base file of that content: shipped as a blob, or (format 2) rebuilt from a recipe.
        var blobs = manifest.Blobs.Select(b => b.Sha256).Concat(manifest.Recipes.Select(r => r.Sha256)).ToHashSet(StringComparer.Ordinal);
        var sources = new List<FileSource>(manifest.Files.Count);
        long bytesToWrite = 0;
        var filesChecked = 0;
        foreach (var f in manifest.Files)
        {
            ct.ThrowIfCancellationRequested();
            // A size check is a dictionary look-up, so those are reported in batches; a hash check reads the file.
            if (progress is not null && (bases.FullHash || filesChecked % ProgressBatch == 0))
                progress.Report(new PatchProgress(PatchPhase.Verifying, filesChecked, manifest.Files.Count, 0, 0) { CurrentItem = f.Path });
            filesChecked++;
            string? reuse = null;
            if (f.Parts.Count == 1 && bases.First(f.Sha256) is { } first)
            {
                reuse = bases.Reuse(f, first);
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
            sources.Add(new FileSource(f, reuse, reuse is null ? default : bases.Info(reuse)));
        }

        progress?.Report(new PatchProgress(PatchPhase.Verifying, filesChecked, manifest.Files.Count, 0, 0));
        return (sources, bytesToWrite);
    }

    /// <summary>The patch's base files by content, and whether each is intact in the install.</summary>
    private sealed class BaseFiles
    {
        private readonly IFileOps _fs;
        private readonly string _installDir;
        private readonly Dictionary<string, TreeEntry> _byPath;
        private readonly CancellationToken _ct;
        // Most hashes occur once: one dictionary entry each, and a list only for content that several base files share.
        private readonly Dictionary<string, BaseFile> _firstBySha;
        private Dictionary<string, List<BaseFile>>? _moreBySha;
        // A base file may be asked about twice only when its content is shared; remembered so it is hashed once.
        private readonly Dictionary<string, bool> _checked = new(StringComparer.Ordinal);

        public BaseFiles(IFileOps fs, PlanInput input, Dictionary<string, TreeEntry> byPath, CancellationToken ct)
        {
            (_fs, _installDir, _byPath, _ct, FullHash) = (fs, input.InstallDir, byPath, ct, input.FullHash);
            _firstBySha = new Dictionary<string, BaseFile>(input.Manifest.Base.Count, StringComparer.Ordinal);
            foreach (var b in input.Manifest.Base)
            {
                if (_firstBySha.TryAdd(b.Sha256, b)) continue;
                _moreBySha ??= new Dictionary<string, List<BaseFile>>(StringComparer.Ordinal);
                if (!_moreBySha.TryGetValue(b.Sha256, out var more)) _moreBySha[b.Sha256] = more = [];
                more.Add(b);
            }
        }

        public bool FullHash { get; }

        public BaseFile? First(string sha256) => _firstBySha.GetValueOrDefault(sha256);

        public EntryInfo Info(string path) => _byPath[path].Info;

        /// <summary>
        /// The base file to reuse for <paramref name="f"/>: the one at the same path if intact; else any intact base file
        /// with the same content, in base order. Null when none is.
        /// </summary>
        public string? Reuse(TargetFile f, BaseFile first)
        {
            var more = _moreBySha?.GetValueOrDefault(f.Sha256);
            var samePath = first.Path == f.Path ? first : more?.Find(b => b.Path == f.Path);
            if (samePath is not null && Reusable(samePath, f)) return samePath.Path;
            if (!ReferenceEquals(first, samePath) && Reusable(first, f)) return first.Path;
            return more?.Find(b => !ReferenceEquals(b, samePath) && Reusable(b, f))?.Path;
        }

        private bool Reusable(BaseFile b, TargetFile f) => b.Size == f.Size && Intact(b);

        private bool Intact(BaseFile b)
        {
            if (FullHash && _checked.TryGetValue(b.Path, out var known)) return known;
            var ok = _byPath.TryGetValue(b.Path, out var e) && e.Info.Kind == EntryKind.File && e.Info.Size == b.Size
                     && (!FullHash || ContentHash.OfFile(_fs, PathRules.Join(_installDir, b.Path), _ct) == b.Sha256);
            if (FullHash) _checked[b.Path] = ok;
            return ok;
        }
    }
}
