using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>syncfs(2): writes back the dirty data and inodes of the file system holding fd, and waits (Linux only).</summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("linux")]
    internal static partial int syncfs(SafeFileHandle fd);
}
