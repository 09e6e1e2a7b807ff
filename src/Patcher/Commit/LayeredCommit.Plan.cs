using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>The layered commit's plan: the steps, decided from the apply plan and the install as it is now.</summary>
internal sealed partial class LayeredCommit
{
    /// <summary>
    /// Decides the steps: which files change (only those are staged), what must move out of the way, which
    /// directories appear or go. Order: old files out, user entries in the way out, old directories out
    /// (deepest first), new directories in (parents first), then the files.
    /// </summary>
    /// <remarks>
    /// <c>namesIgnoreCase</c>: whether the install's file system compares names without case
    /// (<see cref="PathRules.PlatformIgnoresCase"/> by default). There, a new directory whose name differs from an old
    /// one's only in case is found where the old one is, but the old one is removed before the files are placed: it is
    /// made again, with the new spelling. Skipped as a directory that exists, the new files would have no directory and
    /// the update would roll back; keeping the old spelling instead would make the next update's base check miss its files.
    /// </remarks>
    public static (List<OpRow> Ops, List<FileSource> ToStage) Plan(IFileOps fs, StateLayout layout, ApplyPlan plan, bool? namesIgnoreCase = null)
    {
        var manifest = plan.Manifest;
        if (layout.IsInsideInstall && manifest.Files.Select(f => f.Path).Concat(manifest.Directories).Any(layout.IsStatePath))
            throw new PatcherException(PatchErrorCode.UnsafePath, $"the patch writes to '{StateLayout.InsideStateName}', where Patcher keeps its state in this install", layout.InstallDir);

        var steps = new PlanSteps(plan, Refresh(fs, layout, plan));
        steps.DisplaceOldFiles();
        steps.DisplaceUserEntries();
        steps.RemoveOldDirectories();
        steps.MakeNewDirectories(namesIgnoreCase ?? PathRules.PlatformIgnoresCase);
        var toStage = steps.PlaceFiles();
        return (steps.Ops, toStage);
    }

    /// <summary>The steps being decided, in order, and the paths they free.</summary>
    private sealed class PlanSteps(ApplyPlan plan, List<TreeEntry> entries)
    {
        private readonly Manifest _manifest = plan.Manifest;
        private readonly IReadOnlySet<string> _owned = plan.OldVersionPaths;
        private readonly Dictionary<string, TargetFile> _newFiles = plan.Manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        private readonly HashSet<string> _newDirs = new(plan.Manifest.Directories, StringComparer.Ordinal);
        private readonly Dictionary<string, TreeEntry> _byPath = entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
        /// <summary>Paths that will be free when the files are placed.</summary>
        private readonly HashSet<string> _gone = new(StringComparer.Ordinal);
        private readonly List<string> _displacedDirs = [];

        public List<OpRow> Ops { get; } = [];

        private bool UnderDisplaced(string p) => _displacedDirs.Any(d => p.StartsWith(d + "/", StringComparison.Ordinal));

        private void Add(LayeredOpKind kind, string path, string? expected = null, bool backup = false, bool user = false) =>
            Ops.Add(new OpRow(Ops.Count + 1, kind, path, expected, backup, user, OpState.Pending));

        /// <summary>1. Old files the new version does not have as files.</summary>
        public void DisplaceOldFiles()
        {
            foreach (var e in entries.Where(e => e.Info.Kind != EntryKind.Directory && _owned.Contains(e.Path) && !_newFiles.ContainsKey(e.Path)))
            {
                Add(LayeredOpKind.Displace, e.Path);
                _gone.Add(e.Path);
            }
        }

        /// <summary>2. The user's entries where the new version needs the path (a directory merges with a directory).</summary>
        public void DisplaceUserEntries()
        {
            foreach (var e in entries.Where(e => !_owned.Contains(e.Path) && (_newFiles.ContainsKey(e.Path) || _newDirs.Contains(e.Path))))
            {
                if (e.Info.Kind == EntryKind.Directory && _newDirs.Contains(e.Path)) continue;
                if (UnderDisplaced(e.Path)) continue;
                Add(LayeredOpKind.Displace, e.Path, user: true);
                _gone.Add(e.Path);
                if (e.Info.Kind == EntryKind.Directory) _displacedDirs.Add(e.Path);
            }
        }

        /// <summary>
        /// 3. Old directories the new version does not have, deepest first. One that still holds the user's files
        /// stays, unless the new version needs its path for a file: then it moves to the preserved folder.
        /// </summary>
        public void RemoveOldDirectories()
        {
            foreach (var d in entries.Where(e => e.Info.Kind == EntryKind.Directory && _owned.Contains(e.Path) && !_newDirs.Contains(e.Path))
                         .Select(e => e.Path).OrderByDescending(p => p.Count(c => c == '/')).ThenByDescending(p => p, StringComparer.Ordinal))
            {
                if (UnderDisplaced(d)) continue;
                if (_newFiles.ContainsKey(d) && entries.Any(e => e.Path.StartsWith(d + "/", StringComparison.Ordinal) && !_owned.Contains(e.Path)))
                {
                    Add(LayeredOpKind.Displace, d, user: true);
                    _displacedDirs.Add(d);
                }
                else
                {
                    Add(LayeredOpKind.RemoveDir, d);
                }

                _gone.Add(d);
            }
        }

        /// <summary>
        /// 4. New directories, parents first. Where names ignore case, a directory found at the path may be an old one
        /// that step 3 removes (a case-only rename): made again then.
        /// </summary>
        public void MakeNewDirectories(bool namesIgnoreCase)
        {
            var goneIgnoringCase = namesIgnoreCase ? new HashSet<string>(_gone, StringComparer.OrdinalIgnoreCase) : _gone;
            foreach (var d in _manifest.Directories.Order(StringComparer.Ordinal))
            {
                var there = _byPath.TryGetValue(d, out var e) ? e.Info.Kind : EntryKind.Missing;
                if (there == EntryKind.Directory && !goneIgnoringCase.Contains(d)) continue;
                Add(LayeredOpKind.MakeDir, d);
            }
        }

        /// <summary>5. Files whose content or mode changes; the rest stay as they are and are never touched. Returns the files to stage.</summary>
        public List<FileSource> PlaceFiles()
        {
            var toStage = new List<FileSource>();
            foreach (var src in plan.Files)
            {
                var f = src.File;
                var there = _byPath.TryGetValue(f.Path, out var e) && !_gone.Contains(f.Path) ? e.Info : default;
                var oldFileHere = there.Kind == EntryKind.File && _owned.Contains(f.Path);
                if (oldFileHere && src.ReuseFrom == f.Path && (OperatingSystem.IsWindows() || there.Executable == f.Executable)) continue;
                toStage.Add(src);
                Add(LayeredOpKind.Place, f.Path, f.Sha256, backup: oldFileHere);
            }

            return toStage;
        }
    }

    /// <summary>
    /// The plan's walk, brought up to date where it matters, instead of a second walk of the whole install. The walk was taken before the blobs were received (after recovery, except where
    /// the journal lives outside the state directory, as in the power-loss simulation); since then this transaction
    /// changed only its own state, which is left out here. Another program may have changed the install meanwhile, so
    /// every path the new version writes is looked at again: each of its directories, and each file whose content
    /// comes from the patch or from another path (one stat each). An entry found there now is moved aside, never
    /// overwritten; a directory gone since the walk is made again. Paths are looked at parents first, and only below
    /// what is now a real directory: like the walk, this never follows a symlink. Unchanged files that stay
    /// in place, and old files that go, keep what the walk saw; their steps check the disk when they run. Whatever
    /// changes after this point makes a step stop and the commit roll back rather than overwrite it (<see cref="Place"/>).
    /// </summary>
    private static List<TreeEntry> Refresh(IFileOps fs, StateLayout layout, ApplyPlan plan)
    {
        var walked = plan.InstallEntries ?? throw new InvalidOperationException("the layered commit plans from the apply plan's walk of the install");
        var entries = walked.Where(e => !layout.IsStatePath(e.Path)).ToList();
        var index = new Dictionary<string, int>(entries.Count, StringComparer.Ordinal);
        for (var i = 0; i < entries.Count; i++) index[entries[i].Path] = i;
        EntryKind KindNow(string path) => index.TryGetValue(path, out var i) ? entries[i].Info.Kind : EntryKind.Missing;

        var written = plan.Manifest.Directories.Concat(plan.Files.Where(src => src.ReuseFrom != src.File.Path).Select(src => src.File.Path));
        var removed = false;
        // Ordinal order puts a directory before the paths below it, as the walk does (displacing relies on it).
        foreach (var path in written.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var parent = PathRules.Parent(path);
            var info = parent.Length == 0 || KindNow(parent) == EntryKind.Directory ? fs.Stat(PathRules.Join(layout.InstallDir, path)) : default;
            if (index.TryGetValue(path, out var at))
            {
                if (info.Kind != EntryKind.Missing)
                {
                    entries[at] = new TreeEntry(path, info);
                    continue;
                }

                entries[at] = default;
                index.Remove(path);
                removed = true;
            }
            else if (info.Kind != EntryKind.Missing)
            {
                index[path] = entries.Count;
                entries.Add(new TreeEntry(path, info));
            }
        }

        return removed ? entries.Where(e => e.Path is not null).ToList() : entries;
    }
}
