using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>renameat2(2) (glibc 2.28+); with RENAME_EXCHANGE swaps two paths in one atomic step.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static partial int renameat2(SafeFileHandle olddirfd, string oldpath, SafeFileHandle newdirfd, string newpath, uint flags);
}
