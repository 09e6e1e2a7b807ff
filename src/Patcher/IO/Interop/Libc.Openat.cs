using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>openat(2) without a mode: opens a directory (or a file for reading) relative to a directory descriptor.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int openat(int dirfd, string path, int flags);
}
