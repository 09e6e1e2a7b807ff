using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Patching.Commit;
using Patching.IO.Interop;

namespace Patching.IO;

internal sealed partial class FileOps : IPosixRenameFileOps
{
    // Set once a volume answers that it cannot do a POSIX-semantics rename (older Windows, FAT, some network
    // shares, Wine before it learnt FileRenameInfoEx): later files go straight to layer 1.
    private static volatile bool _posixRenameUnsupported;

    /// <summary>The Win32 error with which the system declined a POSIX-semantics rename (0 while none did); for diagnostics.</summary>
    public static int PosixRenameDeclinedError { get; private set; }

    private static void SyncWindows(FileStream fs)
    {
        // On Windows Flush(true) calls FlushFileBuffers and throws on failure, unlike on Unix.
        try
        {
            fs.Flush(flushToDisk: true);
        }
        catch (IOException ex)
        {
            throw NativeErrors.FromException(ex, "FlushFileBuffers", fs.Name);
        }
    }

    /// <summary>
    /// MoveFileEx with WRITE_THROUGH (and REPLACE_EXISTING for files): the rename is on disk when it returns,
    /// which is why <see cref="SyncDirectory"/> has nothing to do on Windows.
    /// </summary>
    [SupportedOSPlatform("windows")]
    private static void RenameWindows(string from, string to)
    {
        var flags = Kernel32.MOVEFILE_WRITE_THROUGH;
        if (!Directory.Exists(from)) flags |= Kernel32.MOVEFILE_REPLACE_EXISTING;
        if (!Kernel32.MoveFileEx(from, to, flags))
            throw NativeErrors.FromWin32(Marshal.GetLastPInvokeError(), $"MoveFileEx to '{to}'", from);
    }

    /// <summary>
    /// NTFS hard links: the layered commit backs up a file by linking it before the name is replaced. Patcher
    /// never writes into an installed file, so a shared file cannot change under either name through us.
    /// </summary>
    [SupportedOSPlatform("windows")]
    private static bool TryHardLinkWindows(string existing, string newPath)
    {
        if (Kernel32.CreateHardLink(newPath, existing, IntPtr.Zero)) return true;
        var error = Marshal.GetLastPInvokeError();
        // Another volume, FAT/exFAT, a share without links, 1023 links already: the caller copies instead.
        if (error is Kernel32.ERROR_NOT_SAME_DEVICE or Kernel32.ERROR_INVALID_FUNCTION or Kernel32.ERROR_NOT_SUPPORTED
            or Kernel32.ERROR_TOO_MANY_LINKS or Kernel32.ERROR_CALL_NOT_IMPLEMENTED) return false;
        throw NativeErrors.FromWin32(error, $"CreateHardLink '{newPath}'", existing);
    }

    public bool TryPosixRename(string from, string to) => OperatingSystem.IsWindows() && !_posixRenameUnsupported && TryPosixRenameWindows(from, to);

    [SupportedOSPlatform("windows")]
    private static unsafe bool TryPosixRenameWindows(string from, string to)
    {
        // DELETE access on the source is what a rename needs; GENERIC_WRITE lets FlushFileBuffers run on the
        // same handle. Sharing read and delete keeps antivirus scanners that already hold it from failing us.
        using var handle = Kernel32.CreateFile(from, Kernel32.DELETE | Kernel32.GENERIC_WRITE | Kernel32.SYNCHRONIZE,
            Kernel32.FILE_SHARE_READ | Kernel32.FILE_SHARE_DELETE, IntPtr.Zero, Kernel32.OPEN_EXISTING, 0, IntPtr.Zero);
        if (handle.IsInvalid) throw NativeErrors.FromWin32(Marshal.GetLastPInvokeError(), "open staged file for rename", from);
        if (!Kernel32.FlushFileBuffers(handle)) throw NativeErrors.FromWin32(Marshal.GetLastPInvokeError(), "FlushFileBuffers", from);
        var info = Kernel32.RenameInfo(Path.GetFullPath(to), Kernel32.FILE_RENAME_FLAG_POSIX_SEMANTICS | Kernel32.FILE_RENAME_FLAG_REPLACE_IF_EXISTS);
        fixed (byte* p = info)
        {
            if (Kernel32.SetFileInformationByHandle(handle, Kernel32.FileRenameInfoEx, p, (uint)info.Length)) return true;
        }

        var error = Marshal.GetLastPInvokeError();
        if (error is Kernel32.ERROR_INVALID_PARAMETER or Kernel32.ERROR_NOT_SUPPORTED or Kernel32.ERROR_INVALID_FUNCTION
            or Kernel32.ERROR_CALL_NOT_IMPLEMENTED)
        {
            PosixRenameDeclinedError = error;
            _posixRenameUnsupported = true;
            return false;
        }

        throw NativeErrors.FromWin32(error, $"POSIX-semantics rename to '{to}'", from);
    }

    /// <summary>
    /// The processes holding <paramref name="path"/>, as "name (pid N)", from the Restart Manager. Empty where
    /// Windows cannot tell (or off Windows); never throws, because it only decorates an error message.
    /// </summary>
    public static IReadOnlyList<string> LockHolders(string path)
    {
        if (!OperatingSystem.IsWindows()) return [];
        try
        {
            return LockHoldersWindows(path);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or ExternalException)
        {
            return [];
        }
    }

    [SupportedOSPlatform("windows")]
    private static unsafe List<string> LockHoldersWindows(string path)
    {
        var key = stackalloc char[Rstrtmgr.CCH_RM_SESSION_KEY + 1];
        if (Rstrtmgr.RmStartSession(out var session, 0, key) != 0) return [];
        try
        {
            if (Rstrtmgr.RmRegisterResources(session, 1, [Path.GetFullPath(path)], 0, IntPtr.Zero, 0, IntPtr.Zero) != 0) return [];
            uint count = 0;
            var rc = Rstrtmgr.RmGetList(session, out var needed, ref count, null, out _);
            if (rc != 0 && rc != Rstrtmgr.ERROR_MORE_DATA) return [];
            if (needed == 0) return [];
            var infos = new Rstrtmgr.RM_PROCESS_INFO[needed];
            count = needed;
            fixed (Rstrtmgr.RM_PROCESS_INFO* p = infos)
            {
                if (Rstrtmgr.RmGetList(session, out _, ref count, p, out _) != 0) return [];
                var result = new List<string>((int)count);
                for (var i = 0; i < count; i++)
                {
                    var name = new string(p[i].strAppName);
                    result.Add($"{name} (pid {p[i].Process.dwProcessId})");
                }

                return result;
            }
        }
        finally
        {
            _ = Rstrtmgr.RmEndSession(session);
        }
    }
}
