using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

internal sealed partial class FileOps
{
    public void Sync(Stream stream)
    {
        var fs = (FileStream)stream;
        fs.Flush(flushToDisk: false);
        if (OperatingSystem.IsWindows())
        {
            SyncWindows(fs);
            return;
        }

        var fd = (int)fs.SafeFileHandle.DangerousGetHandle();
        if (OperatingSystem.IsMacOS() && Libc.fcntl(fd, Libc.F_FULLFSYNC, 0) == 0) return;
        // An fsync failure means the kernel may already have dropped the dirty pages: the data is not
        // safe and retrying would lie. Fatal for the transaction.
        if (Libc.fsync(fd) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "fsync", fs.Name);
    }

    public void SyncDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            // NTFS journals metadata; MoveFileEx(WRITE_THROUGH) makes renames durable. Nothing to do.
            return;
        }

        var fd = OpenDirectory(path);
        if (fd < 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "open directory for fsync", path);
        try
        {
            if (Libc.fsync(fd) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "fsync directory", path);
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }

    /// <summary>
    /// On Linux, syncfs(2) on the directory. On ext4 with a journal, each fsync of a newly written file commits the
    /// journal; after one syncfs has written the files back and committed, their fsyncs find that transaction committed
    /// and skip the commit (each still asks the disk to flush its cache). docs/decisions.md has the measurements.
    /// Elsewhere nothing: the per-file syncs do all the work.
    /// </summary>
    /// <remarks>
    /// syncfs also writes back other programs' dirty data on the same file system, so it can wait for a large
    /// concurrent write. Its error (since Linux 5.8 any write-back error on the file system, other programs' included;
    /// or a sandbox refusing the call) is not ours to report: it returns false, and the per-file fsyncs report a
    /// failed write-back of our files.
    /// </remarks>
    public bool FlushFileSystem(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        var fd = OpenDirectory(path);
        if (fd < 0) return false;
        try
        {
            return Libc.syncfs(fd) == 0;
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }

    /// <summary>A read-only, close-on-exec descriptor of a directory (to fsync or syncfs it), or -1 with errno set.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static int OpenDirectory(string path) =>
        Libc.open(path, Libc.O_RDONLY | (OperatingSystem.IsMacOS()
            ? Libc.O_DIRECTORY_MACOS | Libc.O_CLOEXEC_MACOS
            : Libc.O_DIRECTORY_LINUX | Libc.O_CLOEXEC_LINUX));

    public void Rename(string from, string to)
    {
        if (OperatingSystem.IsWindows())
        {
            RenameWindows(from, to);
            return;
        }

        if (TryRenameBeneath(from, to)) return;
        if (Libc.rename(from, to) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), $"rename to '{to}'", from);
    }

    public bool TryExchange(string a, string b)
    {
        int rc;
        if (OperatingSystem.IsLinux()) rc = TryExchangeBeneath(a, b) ?? Libc.renameat2(Libc.AT_FDCWD, a, Libc.AT_FDCWD, b, Libc.RENAME_EXCHANGE);
        else if (OperatingSystem.IsMacOS()) rc = Libc.renamex_np(a, b, Libc.RENAME_SWAP_MACOS);
        else return false;
        if (rc == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        // EINVAL/ENOSYS/ENOTSUP/EOPNOTSUPP: the file system or kernel cannot exchange; the caller falls back.
        if (errno is 22 or 38 or 95 or 45 or 102) return false;
        throw NativeErrors.FromErrno(errno, $"exchange with '{b}'", a);
    }

    public bool TryHardLink(string existing, string newPath)
    {
        if (OperatingSystem.IsWindows()) return TryHardLinkWindows(existing, newPath);
        if ((TryLinkBeneath(existing, newPath) ?? Libc.link(existing, newPath)) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        // EXDEV, EPERM (fs.protected_hardlinks, FAT), EMLINK, ENOTSUP: fall back to a copy.
        if (errno is 18 or 1 or 31 or 95 or 45) return false;
        throw NativeErrors.FromErrno(errno, $"hard link to '{newPath}'", existing);
    }

    /// <remarks>
    /// Linux only (identity through statx). Whoever opened <paramref name="file"/> checked and hashed it through that
    /// descriptor; <paramref name="path"/> could have been replaced since, so the new link is compared with the open file
    /// and removed when it names another. The file then gets exactly the mode a copy would get (0666 less the umask, plus
    /// the executable bits), whatever mode the blob had, and the fsync makes mode and data durable. Both reach the file's
    /// one inode, which the patch's blob shares.
    /// </remarks>
    public bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable)
    {
        if (!OperatingSystem.IsLinux() || ProcessUmask.Value is not { } umask || !TryHardLink(path, newPath)) return false;
        if (Identity(newPath) != IdentityOf(file))
        {
            DeleteFile(newPath);
            return false;
        }

        const UnixFileMode exec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var mode = (UnixFileMode)(0x1B6 & ~umask) | (executable ? exec : 0); // 0666 & ~umask, as a new file gets
        try
        {
            File.SetUnixFileMode(file, mode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "set permissions of", newPath);
        }

        if (Libc.fsync((int)file.DangerousGetHandle()) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "fsync", newPath);
        return true;
    }

    /// <summary>This process's umask, from /proc/self/status (Linux 4.7+); null where it cannot be read.</summary>
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
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static unsafe bool IsPrivateFile(SafeFileHandle file, out ulong device)
    {
        const uint S_IFMT = 0xF000, S_IFREG = 0x8000;
        device = 0;
        var fd = (int)file.DangerousGetHandle();
        var buffer = stackalloc byte[256];
        if (Libc.statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, buffer) != 0) return false;
        // statx layout: stx_nlink at 16, stx_uid at 20, stx_mode (u16) at 28, stx_dev_major/minor at 136/140.
        uint mode = *(ushort*)(buffer + 28);
        var links = *(uint*)(buffer + 16);
        var uid = *(uint*)(buffer + 20);
        device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        // 0x0E12: setuid, setgid, sticky, group write, other write; 0x180: owner read and write.
        if ((mode & S_IFMT) != S_IFREG || links != 1 || uid != Libc.geteuid() || (mode & 0xE12) != 0 || (mode & 0x180) != 0x180) return false;
        var attributes = Libc.flistxattr(fd, null, 0);
        if (attributes > 0 || (attributes < 0 && Marshal.GetLastPInvokeError() != Libc.ENOTSUP_LINUX)) return false;
        return NoWriters(file);
    }

    /// <summary>
    /// True when nobody has <paramref name="file"/> open for writing: the kernel refuses a read lease while any descriptor
    /// or shared mapping can write the file. The lease is released at once (after <paramref name="whileLeased"/>, a hook
    /// for tests). A process that opens the file for writing meanwhile waits for the release, and the kernel signals the
    /// lease holder: by default with SIGIO, which would terminate this process, so SIGURG (ignored unless handled) is
    /// asked for instead. False where leases are unsupported (some network and FUSE file systems).
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    internal static bool NoWriters(SafeFileHandle file, Action? whileLeased = null)
    {
        var fd = (int)file.DangerousGetHandle();
        if (Libc.fcntl(fd, Libc.F_SETSIG_LINUX, Libc.SIGURG_LINUX) != 0) return false;
        if (Libc.fcntl(fd, Libc.F_SETLEASE_LINUX, Libc.F_RDLCK_LINUX) != 0) return false;
        try
        {
            whileLeased?.Invoke();
        }
        finally
        {
            _ = Libc.fcntl(fd, Libc.F_SETLEASE_LINUX, Libc.F_UNLCK_LINUX);
        }

        return true;
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static unsafe (ulong Device, ulong Inode) IdentityOf(SafeFileHandle file)
    {
        var buffer = stackalloc byte[256];
        if (Libc.statx((int)file.DangerousGetHandle(), "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, buffer) != 0) return (0, 1);
        var ino = *(ulong*)(buffer + 32);
        var dev = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return (dev, ino);
    }

    public void SetExecutable(string path, bool executable)
    {
        if (OperatingSystem.IsWindows()) return;
        var mode = File.GetUnixFileMode(path);
        const UnixFileMode exec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var wanted = executable ? mode | exec : mode & ~exec;
        if (wanted != mode) File.SetUnixFileMode(path, wanted);
    }

    public void CopyMode(string from, string to)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            var mode = File.GetUnixFileMode(from);
            if (File.GetUnixFileMode(to) != mode) File.SetUnixFileMode(to, mode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "copy permissions to", to);
        }
    }

    private static bool IsExecutable(FileInfo fi) =>
        !OperatingSystem.IsWindows() && (fi.UnixFileMode & UnixFileMode.UserExecute) != 0;

    public unsafe bool IsMountPoint(string directory)
    {
        if (!OperatingSystem.IsLinux()) return false;
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory));
        if (parent is null) return true;
        var a = stackalloc byte[256];
        var b = stackalloc byte[256];
        // stx_mnt_id (offset 144, Linux 5.8+) tells bind mounts apart; where the kernel does not report it
        // (stx_mask lacks STATX_MNT_ID) fall back to comparing device numbers.
        if (Libc.statx(Libc.AT_FDCWD, directory, 0, Libc.STATX_BASIC_STATS | Libc.STATX_MNT_ID, a) != 0 ||
            Libc.statx(Libc.AT_FDCWD, parent, 0, Libc.STATX_BASIC_STATS | Libc.STATX_MNT_ID, b) != 0)
            return false;
        if ((*(uint*)a & *(uint*)b & Libc.STATX_MNT_ID) != 0) return *(ulong*)(a + 144) != *(ulong*)(b + 144);
        return *(ulong*)(a + 136) != *(ulong*)(b + 136);
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static unsafe EntryInfo StatLinux(string path)
    {
        const int ENOENT = 2, ENOTDIR = 20;
        const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IXUSR = 0x40;
        var buffer = stackalloc byte[256];
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR) return default;
            throw NativeErrors.FromErrno(errno, "stat", path);
        }

        // statx layout: stx_mode (u16) at 28, stx_ino at 32, stx_size at 40, stx_dev_major/minor at 136/140.
        uint mode = *(ushort*)(buffer + 28);
        var ino = *(ulong*)(buffer + 32);
        var size = *(long*)(buffer + 40);
        var dev = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return (mode & S_IFMT) switch
        {
            S_IFREG => new EntryInfo(EntryKind.File, size, (mode & S_IXUSR) != 0, dev, ino),
            S_IFDIR => new EntryInfo(EntryKind.Directory, 0, false, dev, ino),
            S_IFLNK => new EntryInfo(EntryKind.Symlink, 0, false, 0, 0),
            _ => new EntryInfo(EntryKind.Other, 0, false, dev, ino),
        };
    }

    public unsafe EntryOwner? Owner(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        const int ENOENT = 2, ENOTDIR = 20;
        var buffer = stackalloc byte[256];
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR) return null;
            throw NativeErrors.FromErrno(errno, "stat", path);
        }

        // statx layout: stx_uid at 20, stx_gid at 24, stx_mode (u16) at 28.
        return new EntryOwner(*(uint*)(buffer + 20), *(ushort*)(buffer + 28) & 0xFFFu, *(uint*)(buffer + 24));
    }

    public void RemoveWriteByOthers(string path) =>
        ChangeMode(path, UnixFileMode.GroupWrite | UnixFileMode.OtherWrite, 0);

    public void AllowOwnerWrite(string directory) =>
        ChangeMode(directory, 0, UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    /// <summary>Takes <paramref name="remove"/> off and puts <paramref name="add"/> on a path's mode (a symlink is left alone).</summary>
    private void ChangeMode(string path, UnixFileMode remove, UnixFileMode add)
    {
        if (OperatingSystem.IsWindows() || Stat(path).Kind is not (EntryKind.Directory or EntryKind.File)) return;
        try
        {
            var mode = File.GetUnixFileMode(path);
            var wanted = (mode & ~remove) | add;
            if (wanted != mode) File.SetUnixFileMode(path, wanted);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "set permissions of", path);
        }
    }

    public uint? EffectiveUser => OperatingSystem.IsLinux() ? Libc.geteuid() : null;

    private static unsafe (ulong Device, ulong Inode) Identity(string path)
    {
        if (!OperatingSystem.IsLinux()) return (0, 0);
        var buffer = stackalloc byte[256];
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, buffer) != 0) return (0, 0);
        // statx layout: stx_ino at 32, stx_dev_major at 136, stx_dev_minor at 140.
        var ino = *(ulong*)(buffer + 32);
        var dev = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return (dev, ino);
    }
}
