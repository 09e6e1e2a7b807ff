using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>linkat(2) without AT_SYMLINK_FOLLOW: hard-links relative to directory descriptors, never following a symlink at the source.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);
}
