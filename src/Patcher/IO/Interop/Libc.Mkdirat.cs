using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>mkdirat(2): makes a directory relative to a directory descriptor.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int mkdirat(SafeFileHandle dirfd, string path, int mode);
}
