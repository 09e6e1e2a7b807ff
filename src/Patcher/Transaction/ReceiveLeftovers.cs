using Patching.IO;
using Patching.Journal;
using Patching.State;

namespace Patching.Transaction;

/// <summary>
/// What an apply that did not finish left of its receive, outside a receive (docs/recovery.md, "What survives a
/// recovery and a cancel"). Received blobs are never trusted again. Contents partly rebuilt are kept for the next
/// apply of the same patch as long as a progress record describes them: a rolled-back, recovered or cancelled apply
/// keeps them; the records go when the patch is installed (the <c>patched</c> row), refused, or superseded (the
/// receive of another patch), and the files with them.
/// </summary>
internal static class ReceiveLeftovers
{
    /// <summary>
    /// Deletes the received blobs durably. Called under the lock before a recovery that may remove the pending marker:
    /// once the marker is gone, a later <c>Recover</c> takes its cheap path and would never see them.
    /// </summary>
    public static void DeleteIncoming(IFileOps fs, StateLayout layout)
    {
        if (fs.Stat(layout.IncomingDir).Kind == EntryKind.Missing) return;
        TreeOps.DeleteTree(fs, layout.IncomingDir);
        fs.SyncDirectory(layout.StateDir);
    }

    /// <summary>
    /// Deletes every partial file no progress record names, and the directory when no record is left. Only under the lock.
    /// Whatever is kept is still not trusted: the next receive reads each prefix back against its record.
    /// </summary>
    public static void KeepRecordedPartials(IFileOps fs, StateLayout layout, JournalStore journal)
    {
        var dir = layout.PartialDir;
        var kind = fs.Stat(dir).Kind;
        if (kind == EntryKind.Missing) return;
        var recorded = journal.RecordedContents();
        if (recorded.Count == 0 || kind != EntryKind.Directory)
        {
            TreeOps.DeleteTree(fs, dir);
            return;
        }

        foreach (var name in fs.ListNames(dir).ToList())
        {
            if (!recorded.Contains(name)) TreeOps.DeleteTree(fs, Path.Join(dir, name));
        }
    }

    /// <summary>Whether any partial content is kept for a later apply.</summary>
    public static bool AnyPartialKept(IFileOps fs, StateLayout layout) => fs.Stat(layout.PartialDir).Kind != EntryKind.Missing;
}
