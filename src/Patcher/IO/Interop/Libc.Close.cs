using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>close(2).</summary>
    [LibraryImport(Name, SetLastError = true)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int close(int fd);
}
