using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>fcntl(2) with an int argument; used for F_FULLFSYNC on macOS, where fsync does not flush the drive cache.</summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("macos")]
    internal static partial int fcntl(int fd, int cmd, int arg);
}
