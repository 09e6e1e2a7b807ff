using System.Runtime.InteropServices;

namespace Patching.IO.Interop;

internal static partial class Libc
{
    // open(2) flags whose values differ between Linux architectures (the generic ABI of arm64 and the x86 one) and macOS.
    private static bool IsLinuxArm => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;

    /// <summary>O_NOFOLLOW: fail with ELOOP when the final component is a symlink.</summary>
    internal static int O_NOFOLLOW => OperatingSystem.IsMacOS() ? 0x100 : IsLinuxArm ? 0x8000 : 0x20000;

    /// <summary>O_NONBLOCK: an open of a FIFO without a writer returns at once instead of waiting for one.</summary>
    internal static int O_NONBLOCK => OperatingSystem.IsMacOS() ? 0x4 : 0x800;

    /// <summary>O_CLOEXEC: the descriptor does not leak into a child process.</summary>
    internal static int O_CLOEXEC => OperatingSystem.IsMacOS() ? 0x1000000 : 0x80000;

    /// <summary>O_DIRECTORY: fail with ENOTDIR unless the path names a directory.</summary>
    internal static int O_DIRECTORY => OperatingSystem.IsMacOS() ? 0x100000 : IsLinuxArm ? 0x4000 : 0x10000;

    /// <summary>O_WRONLY | O_CREAT | O_TRUNC: create or truncate a file for writing.</summary>
    internal static int O_CREATE_TRUNCATE_WRITE => OperatingSystem.IsMacOS() ? 0x1 | 0x200 | 0x400 : 0x1 | 0x40 | 0x200;

    /// <summary>AT_REMOVEDIR for unlinkat: remove an empty directory.</summary>
    internal static int AT_REMOVEDIR => OperatingSystem.IsMacOS() ? 0x80 : 0x200;
}
