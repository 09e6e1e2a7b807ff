using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>renamex_np(2) on macOS; RENAME_SWAP exchanges two paths atomically on APFS.</summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("macos")]
    internal static partial int renamex_np(string from, string to, uint flags);
}
