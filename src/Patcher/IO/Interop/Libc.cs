using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

/// <summary>Declarations of the C library functions .NET does not expose. One API per file.</summary>
internal static partial class Libc
{
    internal const string Name = "libc";

    private const int AT_FDCWD = -100;

    /// <summary>AT_FDCWD as a handle for the *at calls: paths are taken as they are (never closed).</summary>
    internal static SafeFileHandle CurrentDirectory { get; } = new((IntPtr)AT_FDCWD, ownsHandle: false);

    internal const int O_RDONLY = 0;
    internal const int F_FULLFSYNC_MACOS = 51;
    internal const int F_SETSIG_LINUX = 10;
    internal const int SIGURG_LINUX = 23;
    internal const int F_SETLEASE_LINUX = 1024;
    internal const int F_RDLCK_LINUX = 0;
    internal const int F_UNLCK_LINUX = 2;
    internal const uint RENAME_EXCHANGE_LINUX = 2;
    internal const uint RENAME_SWAP_MACOS = 2;
    internal const int AT_SYMLINK_NOFOLLOW_LINUX = 0x100;
    internal const int AT_EMPTY_PATH_LINUX = 0x1000;
    internal const uint STATX_BASIC_STATS = 0x7ff;
    internal const uint STATX_BTIME = 0x800;
    internal const uint STATX_MNT_ID = 0x1000;

    // File type bits of st_mode / stx_mode.
    internal const uint S_IFMT = 0xF000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFDIR = 0x4000, S_IFBLK = 0x6000,
        S_IFREG = 0x8000, S_IFLNK = 0xA000, S_IFSOCK = 0xC000;

    // Permission bits of st_mode.
    internal const uint S_ISUID = 0x800, S_ISGID = 0x400, S_ISVTX = 0x200, S_IRUSR = 0x100, S_IWUSR = 0x80, S_IXUSR = 0x40,
        S_IWGRP = 0x10, S_IWOTH = 0x2, S_IPERMISSIONS = 0xFFF;
}
