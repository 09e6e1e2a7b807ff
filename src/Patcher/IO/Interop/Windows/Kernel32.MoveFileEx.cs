using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Kernel32
{
    /// <summary>
    /// MoveFileExW: with <see cref="MOVEFILE_REPLACE_EXISTING"/> | <see cref="MOVEFILE_WRITE_THROUGH"/> the rename
    /// replaces the target in one step and returns only after it is flushed (DESIGN §5 rule 5). Unlike
    /// <c>ReplaceFile</c> it has no documented partial states.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "MoveFileExW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    [return: MarshalAs(UnmanagedType.Bool)]
    [SupportedOSPlatform("windows")]
    internal static partial bool MoveFileEx(string existingFileName, string newFileName, uint flags);
}
