using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>fchownat(2): gives an entry (relative to a directory descriptor, a symlink itself with AT_SYMLINK_NOFOLLOW) an owner and group.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static partial int fchownat(SafeFileHandle dirfd, string path, uint owner, uint group, int flags);
}
