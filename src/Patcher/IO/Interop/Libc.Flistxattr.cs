using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>
    /// flistxattr(2): with a null list, the size of the file's extended attribute names; 0 when it has none. A blob with
    /// attributes (a capability, an ACL, a security label) is never hard-linked into an install (LinuxFiles.IsPrivateFile).
    /// </summary>
    [LibraryImport(Name, SetLastError = true)]
    [SupportedOSPlatform("linux")]
    internal static unsafe partial nint flistxattr(SafeFileHandle fd, byte* list, nuint size);
}
