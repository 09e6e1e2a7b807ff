using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>
    /// statx(2) (glibc 2.28+). Used for device and inode numbers, which .NET does not expose; its buffer
    /// layout is the same on every Linux architecture, unlike struct stat.
    /// </summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
