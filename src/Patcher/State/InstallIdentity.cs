using System.Text;
using Patching.IO;
using Patching.Manifests;

namespace Patching.State;

/// <summary>
/// Which directory an install is, beyond its path: the journal records it with the installed version, so that an install
/// that was deleted and copied back, or restored from a backup, is not taken for the one the journal describes.
/// </summary>
/// <remarks>
/// Where the file system numbers its directories (Linux), the identity is the inode number, plus the directory's birth
/// time where the file system records one: ext4 hands a deleted directory's inode number to the next directory made in the
/// same place at once, and only the birth time
/// then tells them apart. A move within the file system keeps both. The device number is left out: it names the drive by
/// the order it was attached in (a USB drive's 8:17 may be 8:33 after the next boot), which would make an install on
/// such a drive unknown after a reboot. Where the file operations report no inode (Windows, macOS), a marker file inside
/// the install holds a random id; deleting the install deletes it.
/// The marker is Patcher's, never the player's: it is left out of every walk of the install, of every published tree, and
/// no manifest may name it (<see cref="PathRules.InstallMarkerName"/>).
/// </remarks>
internal static class InstallIdentity
{
    private const string MarkerPrefix = "marker:";

    /// <summary>The install's identity as it is now; null when it has none yet (no inode, no marker).</summary>
    public static string? Read(IFileOps fs, string installDir)
    {
        var info = fs.Stat(installDir);
        if (info.Inode != 0)
            return BirthTime(installDir) is { } born ? $"inode:{info.Inode}:{born}" : $"inode:{info.Inode}";
        var marker = Path.Join(installDir, PathRules.InstallMarkerName);
        if (fs.Stat(marker).Kind != EntryKind.File) return null;
        using var stream = fs.OpenRead(marker);
        var buffer = new byte[64];
        var n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return MarkerPrefix + Encoding.ASCII.GetString(buffer, 0, n).Trim();
    }

    /// <summary>
    /// The identity to record with a version just installed: <see cref="Read"/>, after writing the marker (durably) where
    /// the install has neither an inode nor a marker yet.
    /// </summary>
    public static string? Establish(IFileOps fs, string installDir)
    {
        if (Read(fs, installDir) is { } known) return known;
        var id = Guid.NewGuid().ToString("N");
        TreeOps.WriteDurably(fs, Path.Join(installDir, PathRules.InstallMarkerName), Encoding.ASCII.GetBytes(id));
        return MarkerPrefix + id;
    }

    /// <summary>
    /// Whether the install is still the one the journal recorded. A journal that recorded no identity (written before
    /// identities were kept) is taken at its word.
    /// </summary>
    public static bool Matches(string? recorded, string? current) => recorded is null || string.Equals(recorded, current, StringComparison.Ordinal);

    /// <summary>The directory's birth time in nanoseconds since the epoch (statx STATX_BTIME); null where the file system keeps none.</summary>
    private static long? BirthTime(string path) => OperatingSystem.IsLinux() ? LinuxFiles.BirthTime(path) : null;
}
