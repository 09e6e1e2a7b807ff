using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>FILE_ATTRIBUTE_TAG_INFO: the attributes and, for a reparse point, its tag, read from an open handle.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FileAttributeTagInfo
    {
        internal uint FileAttributes;
        internal uint ReparseTag;
    }

    /// <summary>
    /// GetFileInformationByHandleEx with <see cref="FileAttributeTagInfoClass"/>: what a handle opened with
    /// <see cref="FILE_FLAG_OPEN_REPARSE_POINT"/> refers to, so a junction or symlink is recognised on the very handle
    /// that is then held, not on a name that could be swapped after the check.
    /// </summary>
    [LibraryImport(Name, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    [SupportedOSPlatform("windows")]
    internal static partial bool GetFileInformationByHandleEx(SafeFileHandle file, int fileInformationClass, out FileAttributeTagInfo info, uint bufferSize);
}
