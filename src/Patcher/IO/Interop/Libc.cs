namespace Patching.IO.Interop;

/// <summary>Declarations of the C library functions .NET does not expose. One API per file.</summary>
internal static partial class Libc
{
    internal const string Name = "libc";

    internal const int AT_FDCWD = -100;
    internal const int O_RDONLY = 0;
    internal const int O_DIRECTORY_LINUX = 0x10000;
    internal const int O_DIRECTORY_MACOS = 0x100000;
    internal const int O_CLOEXEC_LINUX = 0x80000;
    internal const int O_CLOEXEC_MACOS = 0x1000000;
    internal const int F_FULLFSYNC = 51;
    internal const int F_SETSIG_LINUX = 10;
    internal const int SIGURG_LINUX = 23;
    internal const int F_SETLEASE_LINUX = 1024;
    internal const int F_RDLCK_LINUX = 0;
    internal const int F_UNLCK_LINUX = 2;
    internal const int ENOTSUP_LINUX = 95;
    internal const uint RENAME_EXCHANGE = 2;
    internal const uint RENAME_SWAP_MACOS = 2;
    internal const int AT_SYMLINK_NOFOLLOW = 0x100;
    internal const int AT_EMPTY_PATH = 0x1000;
    internal const int STATX_BASIC_STATS = 0x7ff;
    internal const int STATX_MNT_ID = 0x1000;
}
