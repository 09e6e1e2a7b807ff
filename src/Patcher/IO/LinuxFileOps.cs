using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// What Linux does beyond any Unix: one statx per stat (kind, size, mode and identity in one call; the portable path
/// costs several syscalls per entry, which dominated walks of large installs), owners, mount points, syncfs, the atomic
/// exchange (renameat2), files created beneath their root, and linking a verified open file.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed partial class LinuxFileOps : UnixFileOps
{
    public override EntryInfo Stat(string path)
    {
        if (LinuxFiles.TryStat(path, out var s)) return LinuxFiles.ToEntry(s);
        var errno = Marshal.GetLastPInvokeError();
        if (errno is NativeErrors.ENOENT or NativeErrors.ENOTDIR) return default;
        throw NativeErrors.FromErrno(errno, "stat", path);
    }

    public override EntryOwner? Owner(string path)
    {
        if (LinuxFiles.TryStat(path, out var s)) return new EntryOwner(s.Uid, s.Mode & Libc.S_IPERMISSIONS, s.Gid);
        var errno = Marshal.GetLastPInvokeError();
        if (errno is NativeErrors.ENOENT or NativeErrors.ENOTDIR) return null;
        throw NativeErrors.FromErrno(errno, "stat", path);
    }

    public override uint? EffectiveUser => Libc.geteuid();

    public override void SetOwner(string path, uint uid, uint gid)
    {
        using var p = OpenBeneath(path);
        if (Libc.fchownat(p.Dir, p.At, uid, gid, Libc.AT_SYMLINK_NOFOLLOW_LINUX) != 0)
            throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "change the owner of", path);
    }

    /// <summary>
    /// The mount id (Linux 5.8+) tells bind mounts apart, which share their parent's device number; where the kernel does
    /// not report it, device numbers are compared.
    /// </summary>
    public override bool IsMountPoint(string directory)
    {
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory));
        if (parent is null) return true;
        const uint mask = Libc.STATX_BASIC_STATS | Libc.STATX_MNT_ID;
        if (!LinuxFiles.TryStat(directory, out var a, mask, followLast: true) || !LinuxFiles.TryStat(parent, out var b, mask, followLast: true))
            return false;
        if ((a.Mask & b.Mask & Libc.STATX_MNT_ID) != 0) return a.MountId != b.MountId;
        return a.Device != b.Device;
    }

    /// <summary>
    /// syncfs(2) on the directory. On ext4 with a journal, each fsync of a newly written file commits the journal; after
    /// one syncfs has written the files back and committed, their fsyncs find that transaction committed and skip the
    /// commit (each still asks the disk to flush its cache).
    /// </summary>
    /// <remarks>
    /// syncfs also writes back other programs' dirty data on the same file system, so it can wait for a large concurrent
    /// write. Its error (since Linux 5.8 any write-back error on the file system, other programs' included; or a sandbox
    /// refusing the call) is not ours to report: it returns false, and the per-file fsyncs report a failed write-back of
    /// our files.
    /// </remarks>
    public override bool FlushFileSystem(string path)
    {
        using var dir = OpenDirectory(path);
        return !dir.IsInvalid && Libc.syncfs(dir) == 0;
    }

    /// <summary>renameat2 with RENAME_EXCHANGE relative to the two parents; false where the file system cannot.</summary>
    public override bool TryExchange(string a, string b)
    {
        int rc, errno;
        using (var x = OpenBeneath(a))
        using (var y = OpenBeneath(b))
            rc = KeepErrno(() => Libc.renameat2(x.Dir, x.At, y.Dir, y.At, Libc.RENAME_EXCHANGE_LINUX), out errno);
        if (rc == 0) return true;
        if (NativeErrors.ExchangeUnsupported(errno)) return false;
        throw NativeErrors.FromErrno(errno, $"exchange with '{b}'", a);
    }

    private protected override bool CreatesBeneath => true;

    private protected override SafeFileHandle OpenForCreate(SafeFileHandle dir, string name, int flags, int mode) =>
        Libc.openat(dir, name, flags, mode);

    /// <remarks>
    /// Whoever opened <paramref name="file"/> checked and hashed it through that handle; <paramref name="path"/> could
    /// have been replaced since, so the new link is compared with the open file and removed when it names another. The
    /// file then gets exactly the mode a copy would get (0666 less the umask, plus the executable bits), whatever mode the
    /// blob had, and the fsync makes mode and data durable. Both reach the file's one inode, which the patch's blob shares.
    /// </remarks>
    public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable)
    {
        if (LinuxFiles.Umask is not { } umask || !TryHardLink(path, newPath)) return false;
        if (Identity(newPath) != LinuxFiles.IdentityOf(file))
        {
            DeleteFile(newPath);
            return false;
        }

        const UnixFileMode exec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        const int readWriteForAll = 0x1B6; // 0666
        var mode = (UnixFileMode)(readWriteForAll & ~umask) | (executable ? exec : 0);
        try
        {
            File.SetUnixFileMode(file, mode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "set permissions of", newPath);
        }

        SyncData(file, newPath);
        return true;
    }

    private static (ulong Device, ulong Inode) Identity(string path) =>
        LinuxFiles.TryStat(path, out var s) ? (s.Device, s.Inode) : (0, 0);
}
