using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>FlushFileBuffers: the staged file's data reaches the disk before its rename into place.</summary>
    [LibraryImport(Name, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    [SupportedOSPlatform("windows")]
    internal static partial bool FlushFileBuffers(SafeFileHandle file);
}
