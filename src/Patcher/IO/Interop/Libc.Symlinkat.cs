using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>symlinkat(2): makes a symlink relative to a directory descriptor.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial int symlinkat(string target, int newdirfd, string linkpath);
}
