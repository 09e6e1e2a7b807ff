using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>geteuid(2): whose files only this process's own user could have written (see LinuxFiles.IsPrivateFile).</summary>
    [LibraryImport(Name)]
    [UnsupportedOSPlatform("windows")]
    internal static partial uint geteuid();
}
