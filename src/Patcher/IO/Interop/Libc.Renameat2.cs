using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>renameat2(2) (glibc 2.28+); with RENAME_EXCHANGE swaps two paths in one atomic step.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
}
