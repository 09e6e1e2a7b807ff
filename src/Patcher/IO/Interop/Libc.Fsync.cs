using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>fsync(2). .NET's Flush(true) swallows fsync errors on Unix, so we call it ourselves.</summary>
    [LibraryImport(Name, SetLastError = true)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int fsync(SafeFileHandle fd);
}
