using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>openat(2) with a mode, to create a file relative to a directory descriptor. Linux only: on macOS the mode is a variadic argument, passed differently on arm64.</summary>
    [LibraryImport(Name, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static partial SafeFileHandle openat(SafeFileHandle dirfd, string path, int flags, int mode);
}
