using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>fdopendir(3): a directory stream over an open directory descriptor, which it takes over (closedir closes it); 0 on failure.</summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("linux")]
    internal static partial nint fdopendir(int fd);

    /// <summary>readdir(3): the next entry (a struct dirent), or 0 at the end (errno unchanged) or on failure (errno set).</summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("linux")]
    internal static partial nint readdir(nint dirp);

    /// <summary>closedir(3): ends the stream and closes its descriptor.</summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("linux")]
    internal static partial int closedir(nint dirp);

    /// <summary>Offset of d_name in Linux's 64-bit struct dirent (glibc and musl): d_ino, d_off, d_reclen, d_type.</summary>
    internal const int DIRENT_NAME_OFFSET_LINUX = 19;

    /// <summary>F_DUPFD_CLOEXEC on Linux: a close-on-exec duplicate of a descriptor (for fdopendir, which takes it over).</summary>
    internal const int F_DUPFD_CLOEXEC_LINUX = 1030;
}
