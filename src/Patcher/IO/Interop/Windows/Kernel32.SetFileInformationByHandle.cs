using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>
    /// SetFileInformationByHandle. With <see cref="FileRenameInfoEx"/> and
    /// <see cref="FILE_RENAME_FLAG_POSIX_SEMANTICS"/> | <see cref="FILE_RENAME_FLAG_REPLACE_IF_EXISTS"/> the rename
    /// replaces a target that other processes hold open with delete sharing: the old file lives on, nameless,
    /// until they close it. <paramref name="info"/> is a FILE_RENAME_INFO built by <see cref="RenameInfo"/>.
    /// </summary>
    [LibraryImport(Name, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    [SupportedOSPlatform("windows")]
    internal static unsafe partial bool SetFileInformationByHandle(SafeFileHandle file, int fileInformationClass, byte* info, uint bufferSize);

    /// <summary>
    /// Lays out FILE_RENAME_INFO for 64-bit Windows: a 4-byte flags union, 4 bytes padding, the RootDirectory
    /// handle (8), FileNameLength in bytes (4), then the UTF-16 name (terminated, though the length excludes it).
    /// </summary>
    internal static byte[] RenameInfo(string newFullPath, uint flags)
    {
        const int nameOffset = 20;
        var nameBytes = newFullPath.Length * sizeof(char);
        var buffer = new byte[nameOffset + nameBytes + sizeof(char)];
        BitConverter.TryWriteBytes(buffer.AsSpan(0, 4), flags);
        // RootDirectory stays zero: the name is a full path.
        BitConverter.TryWriteBytes(buffer.AsSpan(16, 4), (uint)nameBytes);
        MemoryMarshal.AsBytes(newFullPath.AsSpan()).CopyTo(buffer.AsSpan(nameOffset));
        return buffer;
    }
}
