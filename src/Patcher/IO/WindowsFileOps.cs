using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// The file system of Windows: FlushFileBuffers for durability, MoveFileEx with write-through for renames (so a rename
/// is on disk when it returns and directories need no sync), NTFS hard links, and layer 0 of the layered replace.
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed class WindowsFileOps : PortableFileOps
{
    // Set once a volume answers that it cannot do a POSIX-semantics rename (older Windows, FAT, some network
    // shares, Wine without FileRenameInfoEx): later files go straight to layer 1.
    private static volatile bool _posixRenameUnsupported;

    /// <summary>The Win32 error with which the system declined a POSIX-semantics rename (0 while none did); for diagnostics.</summary>
    public static int PosixRenameDeclinedError { get; private set; }

    public override bool ReportsWin32Errors => true;

    /// <summary>Refuses a step below a confined root that would pass through a junction or symlink (see <see cref="ReparsePoints"/>).</summary>
    private static void NoRedirect(string path, bool includeLast) => ReparsePoints.Refuse(path, includeLast, ReparsePoints.Inspect);

    public override Stream OpenRead(string path)
    {
        NoRedirect(path, includeLast: true);
        return base.OpenRead(path);
    }

    public override Stream Create(string path)
    {
        NoRedirect(path, includeLast: true);
        return base.Create(path);
    }

    public override void CreateDirectory(string path)
    {
        NoRedirect(path, includeLast: true);
        base.CreateDirectory(path);
    }

    /// <summary>Deletes the entry itself (a symlink or junction is removed, not followed); the directories on the way are checked.</summary>
    public override void DeleteFile(string path)
    {
        NoRedirect(path, includeLast: false);
        base.DeleteFile(path);
    }

    public override void DeleteDirectory(string path)
    {
        NoRedirect(path, includeLast: false);
        base.DeleteDirectory(path);
    }

    protected override bool TryCreateSymlinkBeneath(string target, string path)
    {
        NoRedirect(path, includeLast: false);
        return false;
    }

    public override void Sync(Stream stream)
    {
        var fs = (FileStream)stream;
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

    /// <summary>NTFS journals metadata, and renames are written through: nothing to do.</summary>
    public override void SyncDirectory(string path)
    {
    }

    /// <summary>
    /// MoveFileEx with WRITE_THROUGH (and REPLACE_EXISTING for files): the rename is on disk when it returns,
    /// which is why <see cref="SyncDirectory"/> has nothing to do on Windows.
    /// </summary>
    public override void Rename(string from, string to)
    {
        NoRedirect(from, includeLast: false);
        NoRedirect(to, includeLast: false);
        var flags = Kernel32.MOVEFILE_WRITE_THROUGH;
        if (!Directory.Exists(from)) flags |= Kernel32.MOVEFILE_REPLACE_EXISTING;
        if (!Kernel32.MoveFileEx(from, to, flags))
            throw NativeErrors.FromWin32(Marshal.GetLastPInvokeError(), $"MoveFileEx to '{to}'", from);
    }

    /// <summary>
    /// NTFS hard links: the layered commit backs up a file by linking it before the name is replaced. Patcher
    /// never writes into an installed file, so a shared file cannot change under either name through us.
    /// </summary>
    public override bool TryHardLink(string existing, string newPath)
    {
        NoRedirect(existing, includeLast: true);
        NoRedirect(newPath, includeLast: false);
        if (Kernel32.CreateHardLink(newPath, existing, IntPtr.Zero)) return true;
        var error = Marshal.GetLastPInvokeError();
        if (NativeErrors.HardLinkImpossibleWin32(error)) return false;
        throw NativeErrors.FromWin32(error, $"CreateHardLink '{newPath}'", existing);
    }

    public override bool TryPosixRename(string from, string to)
    {
        if (_posixRenameUnsupported) return false;
        NoRedirect(from, includeLast: true);
        NoRedirect(to, includeLast: false);
        return PosixRename(from, to);
    }

    private static unsafe bool PosixRename(string from, string to)
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
        if (NativeErrors.PosixRenameUnsupportedWin32(error))
        {
            PosixRenameDeclinedError = error;
            _posixRenameUnsupported = true;
            return false;
        }

        throw NativeErrors.FromWin32(error, $"POSIX-semantics rename to '{to}'", from);
    }
}
