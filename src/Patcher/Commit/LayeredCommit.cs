using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// Commit by replacing the install's files one by one, each step journaled. Before the
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
internal sealed partial class LayeredCommit(IFileOps fs, StateLayout layout, JournalStore journal, LockRetry retry, ILogger log)
{
    public static string BackupDir(StateLayout layout, string txId) => Path.Join(layout.StateDir, "backup-" + txId);

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
                return Displace(txId, op, steps, unsynced);

            case LayeredOpKind.MakeDir:
            {
                var kind = fs.Stat(target).Kind;
                if (kind == EntryKind.Directory) return null;
                if (kind != EntryKind.Missing)
                    throw new PatcherException(PatchErrorCode.IOFailure, $"'{op.Path}' appeared during the commit where the new version needs a directory", target);
                fs.CreateDirectory(target);
                WalkedScope.Tree?.Forget(op.Path, below: true); // made by this update, after the walk
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
                WalkedScope.Tree?.Forget(op.Path, below: false); // a directory made here later is rightly another one
                fs.SyncDirectory(parent);
                return layer;
            }

            case LayeredOpKind.Place:
                return Place(txId, op, target, parent, unsynced);

            default:
                throw new PatcherException(PatchErrorCode.JournalCorrupt, $"unknown layered step '{op.Kind}'", op.Path);
        }
    }

    /// <summary>
    /// Moves the entry at the step's path into the backup area. Done before a crash whose row had not advanced: the
    /// entry is in the backup area (only this step puts anything at its number), and whatever is at the path now may be
    /// what a later step placed there. No layer (null) means nothing was moved now; <see cref="Forward"/> relies on it.
    /// </summary>
    private string? Displace(string txId, OpRow op, StepsByPath steps, HashSet<string> unsynced)
    {
        var target = Install(op.Path);
        var parent = Path.GetDirectoryName(target)!;
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
        WalkedScope.Tree?.Forget(op.Path, below: true); // what is made at this path later is rightly another directory
        unsynced.Add(parent);
        unsynced.Add(BackupDir(layout, txId));
        return layer;
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
            layer = retry.Run(op.Path, "replace",
                () => fs.TryPosixRename(staged, target),
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
    /// After the commit: the user's displaced entries go to the preserved folder, then the backups and the staging
    /// area go (<see cref="DeleteLeftovers"/>). Idempotent. A backup that cannot be deleted (an old executable still running on
    /// Windows) is left with a warning; the next update removes it. A displaced entry Patcher may not move (immutable,
    /// append-only, in a directory of another user: no retry changes that) stays in the backup area, which is then kept
    /// as <see cref="StateLayout.UnsweptDir"/>, never trashed, so the transaction still reaches done; those are returned.
    /// </summary>
    public IReadOnlyList<string> Finish(string txId)
    {
        var touched = new HashSet<string>(StringComparer.Ordinal);
        var left = new List<string>();
        foreach (var op in journal.Ops(txId).Where(o => o.User && o.Kind == LayeredOpKind.Displace))
        {
            var backup = Backup(txId, op);
            if (fs.Stat(backup).Kind == EntryKind.Missing) continue;
            var keep = PathRules.Join(layout.PreservedDir(txId), op.Path);
            TreeOps.CreateDirectoriesDurably(fs, Path.GetDirectoryName(keep)!);
            try
            {
                fs.Rename(backup, keep);
            }
            catch (PatcherException ex) when (ex.Code is PatchErrorCode.AccessDenied)
            {
                left.Add(op.Path);
                log.LogWarning("User entry '{Path}' could not be moved out of the backup area ({Reason}); it stays there, kept", op.Path, ex.Message);
                continue;
            }

            touched.Add(Path.GetDirectoryName(keep)!);
            log.LogWarning("User entry '{Path}' was where the new version puts a file or directory; kept it at {Kept}", op.Path, keep);
        }

        TreeOps.SyncDirectories(fs, touched);
        if (left.Count > 0)
        {
            fs.Rename(BackupDir(layout, txId), layout.UnsweptDir(txId));
            fs.SyncDirectory(layout.StateDir);
            log.LogWarning("{Count} of the player's entries could not be moved out of the backup area; they are kept with it in {Kept}",
                left.Count, layout.UnsweptDir(txId));
        }

        DeleteLeftovers(txId);
        return left;
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
                Trash.Move(fs, layout, dir, Path.GetFileName(dir));
            }
            catch (PatcherException ex)
            {
                log.LogInformation("Could not move {Dir} to the trash ({Reason}); deleting it now", dir, ex.Message);
                DeleteInPlace(dir);
                continue;
            }

            Trash.Sync(fs, layout);
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
}
