using Patching.IO;

namespace Patching.State;

/// <summary>
/// The pending marker (<see cref="StateLayout.PendingMarkerPath"/>): a file holding the id of the transaction that may
/// need recovery. It exists from the first received blob to the done row, so that "nothing pending" is one existence
/// check, and names the transaction even when the journal has lost its row.
/// </summary>
internal static class PendingMarker
{
    public static bool Exists(IFileOps fs, StateLayout layout) => fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing;

    /// <summary>Writes the marker durably (file and directory entry) before anything of the transaction is on disk.</summary>
    public static void Write(IFileOps fs, StateLayout layout, string txId) =>
        TreeOps.WriteDurably(fs, layout.PendingMarkerPath, System.Text.Encoding.UTF8.GetBytes(txId));

    /// <summary>The transaction id the marker names; empty when the marker holds nothing.</summary>
    public static string Read(IFileOps fs, StateLayout layout)
    {
        using var marker = fs.OpenRead(layout.PendingMarkerPath);
        using var reader = new StreamReader(marker);
        return reader.ReadToEnd().Trim();
    }

    /// <summary>Removes the marker durably; nothing to do when it is already gone.</summary>
    public static void Remove(IFileOps fs, StateLayout layout)
    {
        if (!Exists(fs, layout)) return;
        fs.DeleteFile(layout.PendingMarkerPath);
        fs.SyncDirectory(layout.StateDir);
    }
}
