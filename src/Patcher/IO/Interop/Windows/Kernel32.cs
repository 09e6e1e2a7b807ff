using System.Runtime.Versioning;

namespace Patching.IO.Interop;

/// <summary>
/// Declarations of the Win32 file APIs .NET does not expose with the flags Patcher needs. One API per file;
/// every call sets the last error, which <see cref="NativeErrors"/> names and maps to a stable code.
/// </summary>
[SupportedOSPlatform("windows")]
internal static partial class Kernel32
{
    internal const string Name = "kernel32.dll";

    // MoveFileEx flags.
    internal const uint MOVEFILE_REPLACE_EXISTING = 0x1;
    internal const uint MOVEFILE_WRITE_THROUGH = 0x8;

    // CreateFile access, sharing, disposition and flags.
    internal const uint DELETE = 0x00010000;
    internal const uint SYNCHRONIZE = 0x00100000;
    internal const uint GENERIC_WRITE = 0x40000000;
    internal const uint FILE_SHARE_READ = 0x1;
    internal const uint FILE_SHARE_WRITE = 0x2;
    internal const uint FILE_SHARE_DELETE = 0x4;
    internal const uint OPEN_EXISTING = 3;
    internal const uint FILE_FLAG_BACKUP_SEMANTICS = 0x02000000;
    internal const uint FILE_READ_ATTRIBUTES = 0x80;
    internal const uint FILE_LIST_DIRECTORY = 0x1;
    internal const uint GENERIC_READ = 0x80000000;
    internal const uint CREATE_ALWAYS = 2;
    internal const uint FILE_FLAG_OPEN_REPARSE_POINT = 0x00200000;
    internal const uint FILE_FLAG_SEQUENTIAL_SCAN = 0x08000000;
    internal const uint FILE_ATTRIBUTE_DIRECTORY = 0x10;

    // FILE_INFO_BY_HANDLE_CLASS.FileAttributeTagInfo.
    internal const int FileAttributeTagInfoClass = 9;

    // FILE_INFO_BY_HANDLE_CLASS.FileRenameInfoEx (Windows 10 1607+).
    internal const int FileRenameInfoEx = 22;
    internal const uint FILE_RENAME_FLAG_REPLACE_IF_EXISTS = 0x1;
    internal const uint FILE_RENAME_FLAG_POSIX_SEMANTICS = 0x2;
}
