using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>
/// The real file system: the implementation of the file-operations seam for the system this process runs on, chosen
/// once (Windows, Linux, macOS, or another Unix), and the few platform facts callers outside the seam ask for.
/// </summary>
internal static class FileOps
{
    public static IFileOps Instance { get; } = Create();

    private static IFileOps Create()
    {
        if (OperatingSystem.IsWindows()) return new WindowsFileOps();
        if (OperatingSystem.IsLinux()) return new LinuxFileOps();
        if (OperatingSystem.IsMacOS()) return new MacFileOps();
        return new UnixFileOps();
    }

    /// <summary>
    /// From now on, steps on paths below <paramref name="root"/> (an install or state directory, as the layout names it)
    /// never pass through a symlink below it (Unix: handle-relative steps, see <see cref="UnixFileOps"/>; Windows: no
    /// junction or symlink on the way, see <see cref="ReparsePoints"/>). Roots are only ever added.
    /// </summary>
    public static void Confine(string root) => ConfinedRoots.Add(root);

    /// <summary>The processes holding <paramref name="path"/>, as "name (pid N)" (Windows); empty elsewhere.</summary>
    public static IReadOnlyList<string> LockHolders(string path) =>
        OperatingSystem.IsWindows() ? RestartManager.LockHolders(path) : [];

    /// <summary>The Win32 error with which Windows declined a POSIX-semantics rename (0 while none did); for diagnostics.</summary>
    public static int PosixRenameDeclinedError => OperatingSystem.IsWindows() ? WindowsFileOps.PosixRenameDeclinedError : 0;

    /// <inheritdoc cref="LinuxFiles.IsPrivateFile"/>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static bool IsPrivateFile(SafeFileHandle file, out ulong device) => LinuxFiles.IsPrivateFile(file, out device);

    /// <inheritdoc cref="LinuxFiles.NoWriters"/>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    internal static bool NoWriters(SafeFileHandle file, Action? whileLeased = null) => LinuxFiles.NoWriters(file, whileLeased);
}
