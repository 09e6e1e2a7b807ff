using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    /// <summary>
    /// statx(2) (glibc 2.28+). Used for device and inode numbers, which .NET does not expose; its buffer layout is the
    /// same on every Linux architecture, unlike struct stat. <paramref name="dirfd"/> is a directory handle, or
    /// <see cref="CurrentDirectory"/> for a path; with <see cref="AT_EMPTY_PATH_LINUX"/> and an empty path, the open file itself.
    /// </summary>
    [LibraryImport(Name, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    [SupportedOSPlatform("linux")]
    internal static partial int statx(SafeFileHandle dirfd, string path, int flags, uint mask, out Statx buffer);
}

/// <summary>
/// struct statx of linux/stat.h, the fields Patcher reads at their fixed offsets; the kernel writes up to 256 bytes.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct Statx
{
    /// <summary>Which fields the kernel filled in (STATX_* bits).</summary>
    [FieldOffset(0)] public uint Mask;
    [FieldOffset(16)] public uint Links;
    [FieldOffset(20)] public uint Uid;
    [FieldOffset(24)] public uint Gid;
    [FieldOffset(28)] public ushort Mode;
    [FieldOffset(32)] public ulong Inode;
    [FieldOffset(40)] public long Size;
    /// <summary>Birth time (stx_btime): seconds and nanoseconds, valid when <see cref="Mask"/> has <see cref="Libc.STATX_BTIME"/>.</summary>
    [FieldOffset(80)] public long BirthSeconds;
    [FieldOffset(88)] public uint BirthNanoseconds;
    [FieldOffset(136)] public uint DeviceMajor;
    [FieldOffset(140)] public uint DeviceMinor;
    /// <summary>Mount id (Linux 5.8+), valid when <see cref="Mask"/> has <see cref="Libc.STATX_MNT_ID"/>.</summary>
    [FieldOffset(144)] public ulong MountId;

    /// <summary>The device number as one value, major in the high half (unique per file system, like st_dev).</summary>
    public readonly ulong Device => ((ulong)DeviceMajor << 32) | DeviceMinor;
}
