using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Recovery;
using Patching.Staging;
using Patching.Transaction;

namespace Patching.Commit;

/// <summary>
/// Commit by replacing the install's files one by one, each step journaled (DESIGN §4, layered). Before the
/// first file changes, every file to be replaced is hard-linked (or copied) into the backup area and the
/// transaction is backup-complete; each replacement is then one rename (layers 0–3, see <see cref="LockRetry"/>)
/// made durable (directory fsyncs) before the next, and the rows of durable steps advance to replaced, 64 to a
/// journal commit. Recovery rolls forward when every remaining staged file verifies, and back otherwise, by
/// looking at the disk for each row, so every step is idempotent: a row still pending may describe a step done.
/// </summary>
/// <remarks>
/// Atomicity is per file, not per tree: between two files the install is a mix, and only recovery (which the
/// app runs at startup) makes it exactly old or new again. A single file is never absent on layers 0–2 (the
/// rename replaces it); on layer 3 it is absent between the rename aside and the rename in.
/// </remarks>
internal sealed class LayeredCommit(IFileOps fs, StateLayout layout, JournalStore journal, LockRetry retry, ILogger log)
{
    /// <summary>Name of the state directory inside the install, used when nothing beside it can be written.</summary>
    public const string InsideStateName = PathRules.ReservedStateName;

    public static string BackupDir(StateLayout layout, string txId) => Path.Join(layout.StateDir, "backup-" + txId);

    /// <summary>True when the state directory is inside the install, so every walk of the install must skip it.</summary>
    public static bool StateInside(StateLayout layout) =>
        string.Equals(Path.GetDirectoryName(layout.StateDir), layout.InstallDir, StringComparison.Ordinal)
        && Path.GetFileName(layout.StateDir) == InsideStateName;

    public static bool IsStatePath(StateLayout layout, string rel) =>
        StateInside(layout) && (rel == InsideStateName || rel.StartsWith(InsideStateName + "/", StringComparison.Ordinal));

    /// <summary>
    /// Decides the steps: which files change (only those are staged), what must move out of the way, which
    /// directories appear or go. Order: old files out, user entries in the way out, old directories out
    /// (deepest first), new directories in (parents first), then the files.
    /// </summary>
    /// <remarks>
    /// <c>namesIgnoreCase</c>: whether the install's file system compares names without case
    /// (<see cref="PathRules.PlatformIgnoresCase"/> by default). There, a new directory whose name differs from an old
    /// one's only in case is found where the old one is, but the old one is removed before the files are placed: it is
    /// made again, with the new spelling. Skipping it, as a directory that exists, left the new files without their
    /// directory and rolled every such update back; keeping the old spelling instead would make the next update's base
    /// check miss its files.
    /// </remarks>
    public static (List<OpRow> Ops, List<FileSource> ToStage) Plan(IFileOps fs, StateLayout layout, ApplyPlan plan, bool? namesIgnoreCase = null)
    {
        var manifest = plan.Manifest;
        var owned = plan.OldVersionPaths;
        var newFiles = manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var newDirs = new HashSet<string>(manifest.Directories, StringComparer.Ordinal);
        if (StateInside(layout) && newFiles.Keys.Concat(newDirs).Any(p => IsStatePath(layout, p)))
            throw new PatcherException(PatchErrorCode.UnsafePath, $"the patch writes to '{InsideStateName}', where Patcher keeps its state in this install", layout.InstallDir);

        var entries = Refresh(fs, layout, plan);
        var byPath = entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
        var ops = new List<OpRow>();
        var gone = new HashSet<string>(StringComparer.Ordinal); // paths that will be free when the files are placed
        var displacedDirs = new List<string>();
        bool UnderDisplaced(string p) => displacedDirs.Any(d => p.StartsWith(d + "/", StringComparison.Ordinal));
        void Add(LayeredOpKind kind, string path, string? expected = null, bool backup = false, bool user = false) =>
            ops.Add(new OpRow(ops.Count + 1, kind, path, expected, backup, user, OpState.Pending));

        // 1. Old files the new version does not have as files.
        foreach (var e in entries.Where(e => e.Info.Kind != EntryKind.Directory && owned.Contains(e.Path) && !newFiles.ContainsKey(e.Path)))
        {
            Add(LayeredOpKind.Displace, e.Path);
            gone.Add(e.Path);
        }

        // 2. The user's entries where the new version needs the path (a directory merges with a directory).
        foreach (var e in entries.Where(e => !owned.Contains(e.Path) && (newFiles.ContainsKey(e.Path) || newDirs.Contains(e.Path))))
        {
            if (e.Info.Kind == EntryKind.Directory && newDirs.Contains(e.Path)) continue;
            if (UnderDisplaced(e.Path)) continue;
            Add(LayeredOpKind.Displace, e.Path, user: true);
            gone.Add(e.Path);
            if (e.Info.Kind == EntryKind.Directory) displacedDirs.Add(e.Path);
        }

        // 3. Old directories the new version does not have, deepest first. One that still holds the user's files
        //    stays, unless the new version needs its path for a file: then it moves to the preserved folder.
        foreach (var d in entries.Where(e => e.Info.Kind == EntryKind.Directory && owned.Contains(e.Path) && !newDirs.Contains(e.Path))
                     .Select(e => e.Path).OrderByDescending(p => p.Count(c => c == '/')).ThenByDescending(p => p, StringComparer.Ordinal))
        {
            if (UnderDisplaced(d)) continue;
            if (newFiles.ContainsKey(d) && entries.Any(e => e.Path.StartsWith(d + "/", StringComparison.Ordinal) && !owned.Contains(e.Path)))
            {
                Add(LayeredOpKind.Displace, d, user: true);
                displacedDirs.Add(d);
            }
            else
            {
                Add(LayeredOpKind.RemoveDir, d);
            }

            gone.Add(d);
        }

        // 4. New directories, parents first. Where names ignore case, a directory found at the path may be an old one
        //    that step 3 removes (a case-only rename): made again then.
        var goneIgnoringCase = namesIgnoreCase ?? PathRules.PlatformIgnoresCase ? new HashSet<string>(gone, StringComparer.OrdinalIgnoreCase) : gone;
        foreach (var d in manifest.Directories.Order(StringComparer.Ordinal))
        {
            var there = byPath.TryGetValue(d, out var e) ? e.Info.Kind : EntryKind.Missing;
            if (there == EntryKind.Directory && !goneIgnoringCase.Contains(d)) continue;
            Add(LayeredOpKind.MakeDir, d);
        }

        // 5. Files whose content or mode changes; the rest stay as they are and are never touched.
        var toStage = new List<FileSource>();
        foreach (var src in plan.Files)
        {
            var f = src.File;
            var there = byPath.TryGetValue(f.Path, out var e) && !gone.Contains(f.Path) ? e.Info : default;
            var oldFileHere = there.Kind == EntryKind.File && owned.Contains(f.Path);
            if (oldFileHere && src.ReuseFrom == f.Path && (OperatingSystem.IsWindows() || there.Executable == f.Executable)) continue;
            toStage.Add(src);
            Add(LayeredOpKind.Place, f.Path, f.Sha256, backup: oldFileHere);
        }

        return (ops, toStage);
    }

    /// <summary>
    /// The plan's walk, brought up to date where it matters, instead of a second walk of the whole install (at 100k
    /// files a walk costs about 0.3 s). The walk was taken before the blobs were received (after recovery, except where
    /// the journal lives outside the state directory, as in the power-loss simulation); since then this transaction
    /// changed only its own state, which is left out here. Another program may have changed the install meanwhile, so
    /// every path the new version writes is looked at again: each of its directories, and each file whose content
    /// comes from the patch or from another path (one stat each). An entry found there now is moved aside, never
    /// overwritten; a directory gone since the walk is made again. Paths are looked at parents first, and only below
    /// what is now a real directory: like the walk, this never follows a symlink (DESIGN §6). Unchanged files that stay
    /// in place, and old files that go, keep what the walk saw; their steps check the disk when they run. Whatever
    /// changes after this point makes a step stop and the commit roll back rather than overwrite it (<see cref="Place"/>).
    /// </summary>
    private static List<TreeEntry> Refresh(IFileOps fs, StateLayout layout, ApplyPlan plan)
    {
        var walked = plan.InstallEntries ?? throw new InvalidOperationException("the layered commit plans from the apply plan's walk of the install");
        var entries = walked.Where(e => !IsStatePath(layout, e.Path)).ToList();
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

    private string Install(string rel) => PathRules.Join(layout.InstallDir, rel);
    private string Staged(string txId, string rel) => PathRules.Join(layout.StagingDir(txId), rel);
    private string Backup(string txId, OpRow op) => Path.Join(BackupDir(layout, txId), op.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
    private string Aside(string txId, OpRow op) => Backup(txId, op) + ".aside";

    /// <summary>
    /// Still in the started state: journals the plan, then links (or copies) each file about to be replaced into
    /// the backup area, makes that durable, and moves to backup-complete. The install is not changed.
    /// </summary>
    public void PrepareBackups(string txId, IReadOnlyList<OpRow> ops)
    {
        var backupDir = BackupDir(layout, txId);
        TreeOps.DeleteTree(fs, backupDir); // a resumed staging may have left a partial one
        journal.RecordOps(txId, ops);
        fs.CreateDirectory(backupDir);
        fs.SyncDirectory(layout.StateDir);
        foreach (var op in ops.Where(o => o.Backup))
        {
            var from = Install(op.Path);
            var to = Backup(txId, op);
            retry.Run(op.Path, "back up", null, () =>
            {
                if (fs.Stat(to).Kind != EntryKind.Missing) fs.DeleteFile(to);
                if (!fs.TryHardLink(from, to)) TreeOps.CopyDurably(fs, from, to);
            }, null);
        }

        fs.SyncDirectory(backupDir);
        journal.MarkLayeredBackupComplete(txId);
    }

    /// <summary>
    /// Runs every step not yet replaced, journaling them in batches (<see cref="RowBatch"/>). A lock that outlasts the
    /// budget, or any other failure, propagates; the caller then rolls back with <see cref="RollBack"/>.
    /// </summary>
    public void Forward(string txId, IProgress<int>? progress = null)
    {
        var ops = journal.Ops(txId);
        var done = 0;
        var replaced = new List<(int Seq, string? Layer)>(RowBatch);
        // Placements and moves aside leave their directories' fsyncs here, and consecutive steps of one kind share them: a
        // batch of files in one directory costs two fsyncs instead of two per file. They are done before any row records
        // a step (a row only records what is durable) and before any step of another kind, which may depend on what came
        // before being durable (a placement depends on its parent's mkdir and on the move aside from its path; a
        // directory's removal on the moves aside out of it). Steps of one kind do not depend on each other: each has its
        // own path; a placement's old content is in the backup area, linked and fsynced before the commit began, and each
        // move aside has its own number there.
        var unsynced = new HashSet<string>(StringComparer.Ordinal);
        LayeredOpKind? unsyncedKind = null;
        var steps = new StepsByPath(ops);
        void SyncPlacements()
        {
            TreeOps.SyncDirectories(fs, unsynced);
            unsynced.Clear();
            unsyncedKind = null;
        }

        foreach (var op in ops)
        {
            if (op.State != OpState.Replaced)
            {
                // A move aside of a directory waits for the fsyncs pending inside it: moved, it is no longer at that path
                // (an old directory that becomes a file of the new version while the player's files keep it).
                if (op.Kind != unsyncedKind || (op.Kind == LayeredOpKind.Displace && HoldsAny(Install(op.Path), unsynced))) SyncPlacements();
                var layer = ForwardStep(txId, op, steps, unsynced);
                if (unsynced.Count > 0) unsyncedKind = op.Kind;
                replaced.Add((op.Seq, layer));
                // A move aside that found nothing to move (no layer) leaves nothing on the disk to say it ran. Its row must
                // be durable before a later step puts something at its path (the new file, or a directory the new version
                // needs there), or running it again after a crash would move that away.
                if (replaced.Count == RowBatch || (op.Kind == LayeredOpKind.Displace && layer is null))
                {
                    SyncPlacements();
                    journal.MarkOpsReplaced(txId, replaced);
                    replaced.Clear();
                }
            }

            progress?.Report(++done);
        }

        SyncPlacements();
        journal.MarkOpsReplaced(txId, replaced);
    }

    /// <summary>Whether <paramref name="directory"/> is, or holds, one of <paramref name="paths"/>.</summary>
    private static bool HoldsAny(string directory, HashSet<string> paths) =>
        paths.Any(p => p.Length >= directory.Length && p.StartsWith(directory, StringComparison.Ordinal)
            && (p.Length == directory.Length || p[directory.Length] == Path.DirectorySeparatorChar));

    /// <summary>
    /// Whether two paths name one file: what a rename leaves when a power cut makes its new name durable but not the removal
    /// of its old one (possible where a file system does not journal a rename as one unit; the power-loss simulation
    /// produces it). Only where the file system reports identities (inode numbers); elsewhere it is never assumed.
    /// </summary>
    private static bool HalfRenamed(EntryInfo a, EntryInfo b) =>
        a.Kind == EntryKind.File && b.Kind == EntryKind.File && a.Inode != 0 && a.Inode == b.Inode && a.Device == b.Device;

    /// <summary>
    /// Two names of one file are not always a cut rename: a staged file linked from an old file shares its inode with any
    /// other name the player gave that file, possibly at the very path the new file goes to. These tell the cases apart
    /// from the other step at the same path.
    /// </summary>
    private sealed class StepsByPath(IReadOnlyList<OpRow> ops)
    {
        private readonly Dictionary<string, OpRow> _place = Index(ops, LayeredOpKind.Place);
        private readonly Dictionary<string, OpRow> _displace = Index(ops, LayeredOpKind.Displace);

        private static Dictionary<string, OpRow> Index(IReadOnlyList<OpRow> ops, LayeredOpKind kind)
        {
            var index = new Dictionary<string, OpRow>(StringComparer.Ordinal);
            foreach (var o in ops) if (o.Kind == kind) index.TryAdd(o.Path, o);
            return index;
        }

        public OpRow? PlaceAt(string path) => _place.GetValueOrDefault(path);

        public OpRow? DisplaceAt(string path) => _displace.GetValueOrDefault(path);
    }

    /// <summary>Whether the placement at <paramref name="path"/>, if there is one, has run (its staged file is gone).</summary>
    private bool PlacedAlready(string txId, string path, StepsByPath steps) =>
        steps.PlaceAt(path) is not null && fs.Stat(Staged(txId, path)).Kind == EntryKind.Missing;

    /// <summary>Whether the player's entry at <paramref name="path"/>, if one was to be moved aside, is still there (not moved yet).</summary>
    private bool StillThePlayers(string txId, string path, StepsByPath steps) =>
        steps.DisplaceAt(path) is { } displace && fs.Stat(Backup(txId, displace)).Kind == EntryKind.Missing;

    /// <summary>
    /// Steps whose rows advance together. A row only records a step that is already durable; a step done before a crash
    /// whose row was still pending is found done on the disk when it runs again (every step checks first; a move aside
    /// that moved nothing has its row written at once, see <see cref="Forward"/>).
    /// </summary>
    private const int RowBatch = 64;

    private string? ForwardStep(string txId, OpRow op, StepsByPath steps, HashSet<string> unsynced)
    {
        var target = Install(op.Path);
        var parent = Path.GetDirectoryName(target)!;
        switch (op.Kind)
        {
            case LayeredOpKind.Displace:
            {
                // Done before a crash whose row had not advanced: the entry is in the backup area (only this step puts
                // anything at its number), and whatever is at the path now may be what a later step placed there. No
                // layer (null) means nothing was moved now; Forward relies on it.
                var to = Backup(txId, op);
                var moved = fs.Stat(to);
                var here = fs.Stat(target);
                if (HalfRenamed(moved, here) && !PlacedAlready(txId, op.Path, steps))
                {
                    // A power cut kept both names of this step's rename (the file systems that do not journal a rename as
                    // one unit can): the backup area has the file, so the name left here goes. Not when this path's
                    // placement already ran: then the file here is the new one, which can share the moved entry's inode
                    // (staged by a link from an old file the player had also linked here).
                    fs.DeleteFile(target);
                    fs.SyncDirectory(parent);
                    return null;
                }

                if (moved.Kind != EntryKind.Missing || here.Kind == EntryKind.Missing) return null;
                var layer = retry.Run(op.Path, "move aside", null, () => fs.Rename(target, to), null);
                unsynced.Add(parent);
                unsynced.Add(BackupDir(layout, txId));
                return layer;
            }

            case LayeredOpKind.MakeDir:
            {
                var kind = fs.Stat(target).Kind;
                if (kind == EntryKind.Directory) return null;
                if (kind != EntryKind.Missing)
                    throw new PatcherException(PatchErrorCode.IOFailure, $"'{op.Path}' appeared during the commit where the new version needs a directory", target);
                fs.CreateDirectory(target);
                InstallOwner.ApplyOne(fs, layout.InstallDir, target);
                fs.SyncDirectory(parent);
                return null;
            }

            case LayeredOpKind.RemoveDir:
            {
                if (fs.Stat(target).Kind != EntryKind.Directory) return null;
                if (fs.ListNames(target).Any())
                {
                    log.LogInformation("Old directory '{Path}' still holds the user's files; kept", op.Path);
                    return null;
                }

                var layer = retry.Run(op.Path, "remove directory", null, () => fs.DeleteDirectory(target), null);
                fs.SyncDirectory(parent);
                return layer;
            }

            case LayeredOpKind.Place:
                return Place(txId, op, target, parent, unsynced);

            default:
                throw new PatcherException(PatchErrorCode.JournalCorrupt, $"unknown layered step '{op.Kind}'", op.Path);
        }
    }

    /// <summary>Places one staged file; the two directories it changed are added to <paramref name="unsynced"/> for the caller to fsync.</summary>
    private string? Place(string txId, OpRow op, string target, string parent, HashSet<string> unsynced)
    {
        var staged = Staged(txId, op.Path);
        var stagedParent = Path.GetDirectoryName(staged)!;
        if (fs.Stat(staged).Kind == EntryKind.Missing)
        {
            // Renamed in before a crash; the row had not advanced yet.
            if (fs.Stat(target).Kind != EntryKind.File)
                throw new PatcherException(PatchErrorCode.IOFailure, $"the staged '{op.Path}' is gone but not in the install", target);
            return null;
        }

        var thereInfo = fs.Stat(target);
        if (!op.Backup && HalfRenamed(fs.Stat(staged), thereInfo))
        {
            // A power cut kept both names of this placement's rename: the file is in place, the staged name goes. (A
            // replacement in that state is simply renamed again below: a rename onto another name of the same file
            // changes nothing, and the staged name goes with the staging area.)
            fs.DeleteFile(staged);
            fs.SyncDirectory(stagedParent);
            return null;
        }

        var there = thereInfo.Kind;
        string layer;
        if (there == EntryKind.Missing)
        {
            // A free path (new file, or layer 3 interrupted after the rename aside). Only the staged file can be
            // locked here (a scanner reading it), so layers 1–2.
            layer = retry.Run(op.Path, "place", null, () => fs.Rename(staged, target), null);
        }
        else if (there == EntryKind.File && op.Backup)
        {
            var posix = fs as IPosixRenameFileOps;
            layer = retry.Run(op.Path, "replace",
                posix is null ? null : () => posix.TryPosixRename(staged, target),
                () => fs.Rename(staged, target),
                () => ReplaceByRenamingAside(txId, op, staged, target));
        }
        else
        {
            // Something the plan did not see (created after planning): never overwrite what may be the user's.
            throw new PatcherException(PatchErrorCode.IOFailure, $"'{op.Path}' appeared during the commit; refusing to overwrite it", target);
        }

        unsynced.Add(parent);
        unsynced.Add(stagedParent);
        return layer;
    }

    /// <summary>
    /// Layer 3: a running executable can be renamed but not overwritten. Rename the target aside into the backup
    /// area, rename the staged file in, check its hash; on any failure put both back and rethrow.
    /// </summary>
    private void ReplaceByRenamingAside(string txId, OpRow op, string staged, string target)
    {
        var aside = Aside(txId, op);
        fs.Rename(target, aside);
        try
        {
            fs.Rename(staged, target);
            using var s = fs.OpenRead(target);
            var hash = ContentHash.OfStream(s);
            if (op.Expected is not null && hash != op.Expected)
                throw new PatcherException(PatchErrorCode.IOFailure, $"'{op.Path}' has SHA-256 {hash} after the rename, expected {op.Expected}", target);
        }
        catch (PatcherException)
        {
            if (fs.Stat(staged).Kind == EntryKind.Missing && fs.Stat(target).Kind == EntryKind.File) fs.Rename(target, staged);
            fs.Rename(aside, target);
            throw;
        }
    }

    /// <summary>
    /// Undoes every step, newest first, deciding each from the disk (so a crash during this is undone by running
    /// it again). Leaves the install exactly as the old version with the user's entries where they were.
    /// </summary>
    public void RollBack(string txId)
    {
        var ops = journal.Ops(txId);
        var steps = new StepsByPath(ops);
        for (var i = ops.Count - 1; i >= 0; i--)
        {
            var op = ops[i];
            var target = Install(op.Path);
            // Sync only what this undo changed: the parent of a step that never ran may not even exist.
            if (!UndoStep(txId, op, target, steps)) continue;
            var parent = Path.GetDirectoryName(target)!;
            if (fs.Stat(parent).Kind == EntryKind.Directory) fs.SyncDirectory(parent);
        }

        var backupDir = BackupDir(layout, txId);
        if (fs.Stat(backupDir).Kind == EntryKind.Directory) fs.SyncDirectory(backupDir);
    }

    /// <summary>Undoes one step if the disk shows it (or part of it) happened. Returns whether anything changed.</summary>
    private bool UndoStep(string txId, OpRow op, string target, StepsByPath steps)
    {
        switch (op.Kind)
        {
            case LayeredOpKind.Place:
                return UndoPlace(txId, op, target, steps);
            case LayeredOpKind.MakeDir:
                if (fs.Stat(target).Kind != EntryKind.Directory || !SpeltAs(target)) return false;
                if (fs.ListNames(target).Any())
                    throw new PatcherException(PatchErrorCode.IOFailure, $"'{op.Path}' was created by this update but now holds files that are not the update's; move them out and recover again", target);
                retry.Run(op.Path, "remove directory", null, () => fs.DeleteDirectory(target), null);
                return true;
            case LayeredOpKind.RemoveDir:
                if (fs.Stat(target).Kind != EntryKind.Missing) return false;
                fs.CreateDirectory(target);
                return true;
            case LayeredOpKind.Displace:
            {
                var backup = Backup(txId, op);
                var backedUp = fs.Stat(backup);
                if (backedUp.Kind == EntryKind.Missing) return false;
                var here = fs.Stat(target);
                if (HalfRenamed(backedUp, here))
                {
                    // Both names of a cut rename: the entry is still here; only the backup's name goes.
                    fs.DeleteFile(backup);
                    return true;
                }

                if (here.Kind != EntryKind.Missing)
                    throw new PatcherException(PatchErrorCode.IOFailure, $"cannot put '{op.Path}' back: something else is there now", target);
                retry.Run(op.Path, "restore", null, () => fs.Rename(backup, target), null);
                return true;
            }

            default:
                return false;
        }
    }

    /// <summary>
    /// Whether the entry found at <paramref name="target"/> has exactly that name. Where names ignore case, a stat of
    /// 'maps/desert.map' also finds the old 'Maps/Desert.map' (a case-only rename): an undo must not take the old
    /// version's directory, or an old file an earlier pass restored, for what this update made. Elsewhere a stat finds
    /// only the exact name, and nothing is listed.
    /// </summary>
    private bool SpeltAs(string target) =>
        !PathRules.PlatformIgnoresCase || fs.ListNames(Path.GetDirectoryName(target)!).Contains(Path.GetFileName(target), StringComparer.Ordinal);

    private bool UndoPlace(string txId, OpRow op, string target, StepsByPath steps)
    {
        var staged = Staged(txId, op.Path);
        var backup = Backup(txId, op);
        var aside = Aside(txId, op);
        var stagedInfo = fs.Stat(staged);
        if (HalfRenamed(stagedInfo, fs.Stat(target)) && !StillThePlayers(txId, op.Path, steps))
        {
            // Placed, with the staged name surviving a power cut too: undo it as a placement. The staged name goes
            // with the staging area.
            stagedInfo = default;
        }

        if (stagedInfo.Kind == EntryKind.File)
        {
            // Not placed. Only an interrupted layer 3 can have left the path empty: the old file is aside.
            if (fs.Stat(target).Kind != EntryKind.Missing) return false;
            if (fs.Stat(aside).Kind == EntryKind.File) fs.Rename(aside, target);
            else if (op.Backup && fs.Stat(backup).Kind == EntryKind.File) fs.Rename(backup, target);
            else return false;
            return true;
        }

        if (op.Backup)
        {
            // Placed: the old content is in the aside file (layer 3) or the backup (link or copy).
            var source = fs.Stat(aside).Kind == EntryKind.File ? aside : backup;
            if (fs.Stat(source).Kind != EntryKind.File) return false; // restored before a crash
            retry.Run(op.Path, "restore", null, () => fs.Rename(source, target), null);
            return true;
        }

        if (fs.Stat(target).Kind != EntryKind.File || !SpeltAs(target)) return false;
        // Only our own new file may go. A rerun of an interrupted rollback finds here what an earlier undo put
        // back (a user's file that had been displaced from this path): different content, and it must stay.
        if (op.Expected is null || ContentHash.OfFile(fs, target) != op.Expected) return false;
        retry.Run(op.Path, "remove new file", null, () => fs.DeleteFile(target), null);
        return true;
    }

    /// <summary>
    /// After the commit: the user's displaced entries go to the preserved folder, then the backups and the staging
    /// area go (<see cref="DeleteLeftovers"/>). Idempotent. A backup that cannot be deleted (an old executable still running on
    /// Windows) is left with a warning; the next update removes it.
    /// </summary>
    public void Finish(string txId)
    {
        var touched = new HashSet<string>(StringComparer.Ordinal);
        foreach (var op in journal.Ops(txId).Where(o => o.User && o.Kind == LayeredOpKind.Displace))
        {
            var backup = Backup(txId, op);
            if (fs.Stat(backup).Kind == EntryKind.Missing) continue;
            var keep = PathRules.Join(layout.PreservedDir(txId), op.Path);
            TreeOps.CreateDirectoriesDurably(fs, Path.GetDirectoryName(keep)!);
            fs.Rename(backup, keep);
            touched.Add(Path.GetDirectoryName(keep)!);
            log.LogWarning("User entry '{Path}' was where the new version puts a file or directory; kept it at {Kept}", op.Path, keep);
        }

        TreeOps.SyncDirectories(fs, touched);
        DeleteLeftovers(txId);
    }

    /// <summary>
    /// Removes the staging and backup areas of a transaction: each is renamed into the trash (one rename, nothing in it
    /// belongs to any version any more), which is emptied after Apply returns (<see cref="ApplyResult.Cleanup"/>) or by
    /// recovery. Where the rename is refused (on Windows, a directory holding a running executable), the area is
    /// deleted here instead. A file that is still in use (an old executable running from the backup area, a
    /// hard-linked backup of a file another process locks, a delete pending while someone holds the file: Win32 5, 32,
    /// 33, or 145 "directory not empty"; .NET reports some of these as plain IOFailure, hence the numbers) is left with
    /// a warning and removed by the next update. Any other failure propagates, and the transaction stays pending so
    /// recovery finishes the cleanup.
    /// </summary>
    public void DeleteLeftovers(string txId)
    {
        foreach (var dir in new[] { layout.StagingDir(txId), BackupDir(layout, txId) })
        {
            if (fs.Stat(dir).Kind == EntryKind.Missing) continue;
            try
            {
                Recoverer.MoveToTrash(fs, layout, dir, Path.GetFileName(dir));
            }
            catch (PatcherException ex)
            {
                log.LogInformation("Could not move {Dir} to the trash ({Reason}); deleting it now", dir, ex.Message);
                DeleteInPlace(dir);
                continue;
            }

            Recoverer.SyncTrash(fs, layout);
        }
    }

    /// <summary>Deletes an area the trash would not take; what is still in use stays, with a warning (see <see cref="DeleteLeftovers"/>).</summary>
    private void DeleteInPlace(string dir)
    {
        try
        {
            TreeOps.DeleteTree(fs, dir);
        }
        catch (PatcherException ex) when (retry.IsLock(ex) || (retry.Win32Semantics && ex.NativeError is 5 or 32 or 33 or 145))
        {
            log.LogWarning("Could not remove {Dir} ({Reason}); it is removed by the next update", dir, ex.Message);
        }
    }

    /// <summary>Every file still to be placed is staged with its declared size and hash, so the commit can be finished.</summary>
    public bool CanRollForward(string txId, Manifest manifest)
    {
        var sizes = manifest.Files.ToDictionary(f => f.Path, f => f.Size, StringComparer.Ordinal);
        foreach (var op in journal.Ops(txId).Where(o => o.Kind == LayeredOpKind.Place && o.State != OpState.Replaced))
        {
            var staged = Staged(txId, op.Path);
            var info = fs.Stat(staged);
            if (info.Kind == EntryKind.Missing)
            {
                if (fs.Stat(Install(op.Path)).Kind == EntryKind.File) continue; // placed before the crash
                return false;
            }

            if (info.Kind != EntryKind.File || info.Size != sizes.GetValueOrDefault(op.Path, -1) || ContentHash.OfFile(fs, staged) != op.Expected)
                return false;
        }

        return true;
    }

}
