using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.State;

namespace Patching.Commit;

/// <summary>The layered commit's rollback, every step undone from what the disk shows, and the check that decides for it.</summary>
internal sealed partial class LayeredCommit
{
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

    /// <summary>Whether the install's volume ignores case, probed at the first undo step that needs it.</summary>
    private bool? _namesIgnoreCase;

    /// <summary>
    /// Whether the entry found at <paramref name="target"/> has exactly that name. Where names ignore case, a stat of
    /// 'maps/desert.map' also finds the old 'Maps/Desert.map' (a case-only rename): an undo must not take the old
    /// version's directory, or an old file an earlier pass restored, for what this update made. Elsewhere a stat finds
    /// only the exact name, and nothing is listed.
    /// </summary>
    private bool SpeltAs(string target) =>
        !(_namesIgnoreCase ??= VolumeCase.IgnoresCase(fs, layout.InstallDir)) || fs.ListNames(Path.GetDirectoryName(target)!).Contains(Path.GetFileName(target), StringComparer.Ordinal);

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
