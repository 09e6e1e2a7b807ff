using Patching.IO;
using Patching.Manifests;

namespace Patching.State;

/// <summary>
/// Whether the volume holding a directory compares names ignoring case, found on that volume rather than assumed from
/// the operating system: Linux mounts exFAT, FAT and NTFS volumes (and ext4 or tmpfs folders with casefolding) that
/// ignore case, and macOS can format APFS case-sensitive. Taken for a player's file named like a new-version file but
/// for case, a wrong answer lets the player's file replace the new version's (the names are one entry there).
/// </summary>
internal static class VolumeCase
{
    /// <summary>
    /// Stats an entry of <paramref name="directory"/> under its own name and with its letters' case swapped: the same
    /// entry (same identity, or, without identities, an answer for a name the listing does not hold) means the volume
    /// ignores case; nothing, or another entry, that it does not. Creates nothing. A directory with no name holding a
    /// letter has nothing a case could confuse; then the operating system's usual answer is taken.
    /// </summary>
    public static bool IgnoresCase(IFileOps fs, string directory)
    {
        var names = fs.ListNames(directory).ToList();
        foreach (var name in names)
        {
            var other = SwapCase(name);
            if (other == name) continue;
            var found = fs.Stat(Path.Join(directory, name));
            var asOther = fs.Stat(Path.Join(directory, other));
            if (found.Kind == EntryKind.Missing) continue; // gone since the listing: try another name
            if (asOther.Kind == EntryKind.Missing) return false;
            if (found.Inode != 0 && asOther.Inode != 0) return (found.Device, found.Inode) == (asOther.Device, asOther.Inode);
            return !names.Contains(other, StringComparer.Ordinal);
        }

        return PathRules.PlatformIgnoresCase;
    }

    /// <summary>The name with every letter's case swapped ("Game.exe" becomes "gAME.EXE").</summary>
    private static string SwapCase(string name) => string.Create(name.Length, name, static (span, source) =>
    {
        for (var i = 0; i < source.Length; i++)
        {
            var c = source[i];
            span[i] = char.IsUpper(c) ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c);
        }
    });
}
