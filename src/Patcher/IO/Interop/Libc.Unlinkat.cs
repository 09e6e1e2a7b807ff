using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>unlinkat(2): removes a name (a file, a symlink itself, or with AT_REMOVEDIR an empty directory) relative to a directory descriptor.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int unlinkat(SafeFileHandle dirfd, string path, int flags);
}
