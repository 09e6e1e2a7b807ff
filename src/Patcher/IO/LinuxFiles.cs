using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>Linux-only facts about files: statx reads, the process's umask from /proc, and the blob-sharing checks.</summary>
[SupportedOSPlatform("linux")]
internal static class LinuxFiles
{
    /// <summary>statx of a path, not following a final symlink; false with errno set when it fails.</summary>
    public static bool TryStat(string path, out Statx stat, uint mask = Libc.STATX_BASIC_STATS, bool followLast = false) =>
        Libc.statx(Libc.CurrentDirectory, path, followLast ? 0 : Libc.AT_SYMLINK_NOFOLLOW_LINUX, mask, out stat) == 0;

    /// <summary>statx of an entry of an open directory, not following it when it is a symlink; false with errno set.</summary>
    public static bool TryStatAt(SafeFileHandle directory, string name, out Statx stat) =>
        Libc.statx(directory, name, Libc.AT_SYMLINK_NOFOLLOW_LINUX, Libc.STATX_BASIC_STATS, out stat) == 0;

    /// <summary>statx of an open file (fstat); false with errno set when it fails.</summary>
    public static bool TryStat(SafeFileHandle file, out Statx stat) =>
        Libc.statx(file, "", Libc.AT_EMPTY_PATH_LINUX, Libc.STATX_BASIC_STATS, out stat) == 0;

    /// <summary>Device and inode of an open file; (0, 1), which no walk reports, when it cannot be read.</summary>
    public static (ulong Device, ulong Inode) IdentityOf(SafeFileHandle file) =>
        TryStat(file, out var s) ? (s.Device, s.Inode) : (0, 1);

    /// <summary>An entry's birth time in nanoseconds since the epoch (STATX_BTIME); null where the file system keeps none.</summary>
    public static long? BirthTime(string path)
    {
        if (!TryStat(path, out var s, Libc.STATX_BTIME) || (s.Mask & Libc.STATX_BTIME) == 0) return null;
        return (s.BirthSeconds * 1_000_000_000) + s.BirthNanoseconds;
    }

    /// <summary>This process's umask, from /proc/self/status (Linux 4.7+); null where it cannot be read.</summary>
    public static int? Umask => ProcessUmask.Value;

    private static readonly Lazy<int?> ProcessUmask = new(() =>
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Umask:", StringComparison.Ordinal));
            return line is null ? null : Convert.ToInt32(line["Umask:".Length..].Trim(), 8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    });

    /// <summary>
    /// True when the installed file may share <paramref name="file"/>'s inode: a regular file with one name, owned by the
    /// effective user, readable and writable by it, writable by no group or other (a POSIX ACL granting write to anyone
    /// else shows as the group write bit), without setuid, setgid or sticky bits and without extended attributes (a
    /// capability, an ACL, a security label would come along with the inode), and open for writing nowhere (a read
    /// lease is refused while any descriptor or shared mapping can write it). Whoever could change such a file later
    /// runs as this user (or as root) and could change the install directly.
    /// </summary>
    public static bool IsPrivateFile(SafeFileHandle file, out ulong device)
    {
        device = 0;
        if (!TryStat(file, out var s)) return false;
        device = s.Device;
        const uint forbidden = Libc.S_ISUID | Libc.S_ISGID | Libc.S_ISVTX | Libc.S_IWGRP | Libc.S_IWOTH;
        const uint ownerReadWrite = Libc.S_IRUSR | Libc.S_IWUSR;
        if ((s.Mode & Libc.S_IFMT) != Libc.S_IFREG || s.Links != 1 || s.Uid != Libc.geteuid() || (s.Mode & forbidden) != 0
            || (s.Mode & ownerReadWrite) != ownerReadWrite) return false;
        unsafe
        {
            var attributes = Libc.flistxattr(file, null, 0);
            if (attributes > 0 || (attributes < 0 && Marshal.GetLastPInvokeError() != NativeErrors.ENOTSUP)) return false;
        }

        return NoWriters(file);
    }

    /// <summary>
    /// True when nobody has <paramref name="file"/> open for writing: the kernel refuses a read lease while any descriptor
    /// or shared mapping can write the file. The lease is released at once (after <paramref name="whileLeased"/>, a hook
    /// for tests). A process that opens the file for writing meanwhile waits for the release, and the kernel signals the
    /// lease holder: by default with SIGIO, which would terminate this process, so SIGURG (ignored unless handled) is
    /// asked for instead. False where leases are unsupported (some network and FUSE file systems).
    /// </summary>
    public static bool NoWriters(SafeFileHandle file, Action? whileLeased = null)
    {
        if (Libc.fcntl(file, Libc.F_SETSIG_LINUX, Libc.SIGURG_LINUX) != 0) return false;
        if (Libc.fcntl(file, Libc.F_SETLEASE_LINUX, Libc.F_RDLCK_LINUX) != 0) return false;
        try
        {
            whileLeased?.Invoke();
        }
        finally
        {
            _ = Libc.fcntl(file, Libc.F_SETLEASE_LINUX, Libc.F_UNLCK_LINUX);
        }

        return true;
    }

    /// <summary>What <see cref="IFileOps.Stat"/> reports for a statx result.</summary>
    public static EntryInfo ToEntry(in Statx s) => (s.Mode & Libc.S_IFMT) switch
    {
        Libc.S_IFREG => new EntryInfo(EntryKind.File, s.Size, (s.Mode & Libc.S_IXUSR) != 0, s.Device, s.Inode),
        Libc.S_IFDIR => new EntryInfo(EntryKind.Directory, 0, false, s.Device, s.Inode),
        Libc.S_IFLNK => new EntryInfo(EntryKind.Symlink, 0, false, 0, 0),
        _ => new EntryInfo(EntryKind.Other, 0, false, s.Device, s.Inode),
    };
}
