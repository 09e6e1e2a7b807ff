using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>open(2) without a mode: a directory (to fsync it, or to start a walk beneath it; .NET cannot open directories) or a file of a patch; an invalid handle on failure, with errno set.</summary>
    [LibraryImport(Name, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [UnsupportedOSPlatform("windows")]
    internal static partial SafeFileHandle open(string path, int flags);
}
