using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>
    /// CreateHardLinkW: the layered commit's backup of a file about to be replaced costs no copy on NTFS. The
    /// link keeps the old content alive after MoveFileEx replaces the name.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "CreateHardLinkW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    [return: MarshalAs(UnmanagedType.Bool)]
    [SupportedOSPlatform("windows")]
    internal static partial bool CreateHardLink(string fileName, string existingFileName, IntPtr securityAttributes);
}
