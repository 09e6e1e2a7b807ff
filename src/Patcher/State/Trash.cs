using Microsoft.Extensions.Logging;
using Patching.IO;

namespace Patching.State;

/// <summary>
/// The trash (<see cref="StateLayout.TrashDir"/>): trees that belong to no version any more (an old tree, received
/// blobs, staging and backup areas) are renamed into it, one rename each, and deleted later, off the path that makes
/// the new version durable. Several processes may fill or empty it at once (a launcher's background cleanup and the
/// app's Recover, without the lock), so every operation here tolerates the trash appearing or vanishing under it.
/// </summary>
internal static class Trash
{
    /// <summary>Renames <paramref name="tree"/> into the trash as <paramref name="name"/> (the caller fsyncs if it matters).</summary>
    public static void Move(IFileOps fs, StateLayout layout, string tree, string name)
    {
        var target = Path.Join(layout.TrashDir, name);
        if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) fs.CreateDirectory(layout.TrashDir);
        // A resumed transaction trashes its incoming directory a second time: a name of its own, rather than deleting
        // the first here (another process may be emptying the trash at this moment).
        else if (fs.Stat(target).Kind != EntryKind.Missing) target += "-" + StateLayout.RandomTag();
        try
        {
            fs.Rename(tree, target);
        }
        catch (PatcherException) when (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing)
        {
            // Another process's cleanup removed the (then empty) trash between our check and the rename.
            fs.CreateDirectory(layout.TrashDir);
            fs.Rename(tree, target);
        }
    }

    /// <summary>
    /// Makes the trash's new entries durable (so a power cut cannot orphan the inodes of what was moved there). A trash that another
    /// process's cleanup removed meanwhile took the entries with it: nothing left to sync.
    /// </summary>
    public static void Sync(IFileOps fs, StateLayout layout)
    {
        try
        {
            fs.SyncDirectory(layout.TrashDir);
        }
        catch (PatcherException) when (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing)
        {
        }
    }

    /// <summary>Moves the tree an earlier update kept as the previous version to the trash, if there is one (the caller syncs).</summary>
    public static bool TakeKeptPrevious(IFileOps fs, StateLayout layout, string txId)
    {
        if (fs.Stat(layout.PreviousDir).Kind == EntryKind.Missing) return false;
        Move(fs, layout, layout.PreviousDir, txId + "-previous");
        return true;
    }

    /// <summary>
    /// Deletes the trash. Never throws: what cannot be deleted now (a file in use, an immutable file, another process
    /// deleting or filling the same trash) is logged and left for the next Apply or Recover.
    /// </summary>
    public static void Empty(IFileOps fs, StateLayout layout, ILogger log)
    {
        // Two deleters may meet: the one that finds an entry gone under it starts over on what is left, a few times,
        // before giving up for now. Each pass deletes everything it can: one entry that cannot go (an immutable file, a
        // file in use) must not keep the rest of an old version on disk.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var remains = TreeOps.DeleteTreeBestEffort(fs, layout.TrashDir);
                if (remains.Entries == 0) return;
                if (attempt < 3) continue;
                log.LogWarning("Could not delete the old version's files in {Trash} yet: {Count} entries ({Bytes} bytes) are left ({Reason}); the next apply or recover retries",
                    layout.TrashDir, remains.Entries, remains.Bytes, remains.FirstFailure?.Message);
                return;
            }
            catch (Exception ex) when (ex is PatcherException || NativeErrors.IsEnvironmentFailure(ex))
            {
                if (fs.Stat(layout.TrashDir).Kind == EntryKind.Missing) return;
                if (attempt < 3) continue;
                log.LogWarning(PatcherLogEvents.CleanupDeferred, "Could not delete the old version's files in {Trash} yet ({Reason}); the next apply or recover retries", layout.TrashDir, ex.Message);
                return;
            }
        }
    }

    /// <summary>
    /// <see cref="Empty"/> on a background task when the options allow, so the launcher need not wait for an unlink per
    /// old file. Inline on a task scheduler that runs one task at a time (such as the power-loss simulation's, which
    /// needs the same sequence of file operations on every run). Runs without the transaction lock: nothing in the
    /// trash belongs to any version, and a concurrent deleter only makes it log and leave the rest.
    /// </summary>
    public static Task EmptyAfterwards(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        if (!options.CleanupInBackground || Parallelism.OneTaskAtATime)
        {
            Empty(fs, layout, options.Logger);
            return Task.CompletedTask;
        }

        return Task.Run(() => Empty(fs, layout, options.Logger));
    }
}
