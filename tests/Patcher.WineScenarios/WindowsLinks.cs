using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Patching.WineScenarios;

/// <summary>
/// Makes the junctions and directory symlinks a hostile player would plant, the way a program does it on Windows:
/// FSCTL_SET_REPARSE_POINT with a mount-point buffer (what <c>mklink /J</c> does), else CreateSymbolicLinkW. Each returns
/// the Win32 error (0 on success) so a scenario can say exactly what the host refused.
/// </summary>
[SupportedOSPlatform("windows")]
internal static partial class WindowsLinks
{
    private const uint GenericWrite = 0x40000000, OpenExisting = 3, OpenReparsePoint = 0x00200000, BackupSemantics = 0x02000000;
    private const uint FsctlSetReparsePoint = 0x000900A4, MountPointTag = 0xA0000003;
    private const uint SymbolicLinkFlagDirectory = 0x1, AllowUnprivilegedCreate = 0x2;

    [LibraryImport("kernel32.dll", EntryPoint = "CreateFileW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    private static partial SafeFileHandle CreateFile(string name, uint access, uint share, IntPtr security, uint disposition, uint flags, IntPtr template);

    [LibraryImport("kernel32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static unsafe partial bool DeviceIoControl(SafeFileHandle device, uint code, byte* input, uint inputSize, IntPtr output, uint outputSize, out uint returned, IntPtr overlapped);

    [LibraryImport("kernel32.dll", EntryPoint = "CreateSymbolicLinkW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool CreateSymbolicLink(string link, string target, uint flags);

    /// <summary>Makes <paramref name="link"/> (which must not exist) a junction to the directory <paramref name="target"/>.</summary>
    public static unsafe int CreateJunction(string link, string target)
    {
        Directory.CreateDirectory(link);
        using var handle = CreateFile(link, GenericWrite, 0, IntPtr.Zero, OpenExisting, OpenReparsePoint | BackupSemantics, IntPtr.Zero);
        if (handle.IsInvalid)
        {
            var error = Marshal.GetLastPInvokeError();
            Directory.Delete(link);
            return error;
        }

        var substitute = @"\??\" + Path.GetFullPath(target);
        var print = Path.GetFullPath(target);
        var pathBytes = (substitute.Length + 1 + print.Length + 1) * 2;
        var buffer = new byte[8 + 8 + pathBytes];
        BitConverter.TryWriteBytes(buffer.AsSpan(0, 4), MountPointTag);
        BitConverter.TryWriteBytes(buffer.AsSpan(4, 2), (ushort)(8 + pathBytes));
        BitConverter.TryWriteBytes(buffer.AsSpan(8, 2), (ushort)0);
        BitConverter.TryWriteBytes(buffer.AsSpan(10, 2), (ushort)(substitute.Length * 2));
        BitConverter.TryWriteBytes(buffer.AsSpan(12, 2), (ushort)((substitute.Length + 1) * 2));
        BitConverter.TryWriteBytes(buffer.AsSpan(14, 2), (ushort)(print.Length * 2));
        MemoryMarshal.AsBytes(substitute.AsSpan()).CopyTo(buffer.AsSpan(16));
        MemoryMarshal.AsBytes(print.AsSpan()).CopyTo(buffer.AsSpan(16 + (substitute.Length + 1) * 2));
        fixed (byte* p = buffer)
        {
            if (DeviceIoControl(handle, FsctlSetReparsePoint, p, (uint)buffer.Length, IntPtr.Zero, 0, out _, IntPtr.Zero)) return 0;
        }

        var failed = Marshal.GetLastPInvokeError();
        handle.Dispose();
        Directory.Delete(link);
        return failed;
    }

    /// <summary>Makes <paramref name="link"/> a directory symlink to <paramref name="target"/>.</summary>
    public static int CreateDirectorySymlink(string link, string target) =>
        CreateSymbolicLink(link, target, SymbolicLinkFlagDirectory | AllowUnprivilegedCreate) ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Whether <paramref name="path"/> is a reparse point that .NET reads a link target from: the junction or symlink really exists.</summary>
    public static bool IsLink(string path)
    {
        var info = new DirectoryInfo(path);
        return info.Exists && (info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is not null;
    }

    /// <summary>
    /// Puts a junction (else a directory symlink) to <paramref name="target"/> at <paramref name="link"/>; returns null on
    /// success, else what the host answered to each way.
    /// </summary>
    public static string? TryLink(string link, string target)
    {
        var junction = CreateJunction(link, target);
        if (junction == 0 && IsLink(link)) return null;
        var symlink = CreateDirectorySymlink(link, target);
        if (symlink == 0 && IsLink(link)) return null;
        if (Directory.Exists(link) && !IsLink(link) && !Directory.EnumerateFileSystemEntries(link).Any()) Directory.Delete(link);
        return $"FSCTL_SET_REPARSE_POINT (junction): Win32 error {junction}{(junction == 0 ? " reported success but no reparse point exists" : "")}; " +
            $"CreateSymbolicLinkW (directory): {(symlink == 0 ? "reported success but no link exists" : $"Win32 error {symlink}")}";
    }
}
