using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>
    /// CreateFileW. .NET's <c>File.OpenHandle</c> cannot ask for <see cref="DELETE"/> access, which a rename through
    /// <see cref="SetFileInformationByHandle"/> needs on the source handle.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "CreateFileW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    [SupportedOSPlatform("windows")]
    internal static partial SafeFileHandle CreateFile(string fileName, uint desiredAccess, uint shareMode, IntPtr securityAttributes,
        uint creationDisposition, uint flagsAndAttributes, IntPtr templateFile);
}
