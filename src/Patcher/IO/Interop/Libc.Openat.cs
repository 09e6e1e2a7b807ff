using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>openat(2) without a mode: opens a directory (or a file for reading) relative to a directory descriptor; an invalid handle on failure.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial SafeFileHandle openat(SafeFileHandle dirfd, string path, int flags);
}
