using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>
    /// fcntl(2) with an int argument: F_FULLFSYNC on macOS, where fsync does not flush the drive cache; F_SETLEASE on
    /// Linux, to learn whether anyone has a file open for writing (LinuxFiles.NoWriters).
    /// </summary>
    [LibraryImport(Name, SetLastError = true)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int fcntl(SafeFileHandle fd, int cmd, int arg);
}
