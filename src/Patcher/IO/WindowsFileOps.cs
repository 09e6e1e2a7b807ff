using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// The file system of Windows: FlushFileBuffers for durability, MoveFileEx with write-through for renames (so a rename
/// is on disk when it returns and directories need no sync), NTFS hard links, and layer 0 of the layered replace.
/// </summary>
/// <remarks>
/// <para>
/// Every step on a path below a confined root (the install, the state directory) first opens the root and each
/// directory on the way with <c>FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS</c>, reads each one's reparse
/// tag from that handle and refuses a junction or symlink with <see cref="PatchErrorCode.SymlinkEscape"/>; the handles
/// share read and write but not delete and stay open until the step returns (<see cref="ReparsePoints.Hold{T}"/>).
/// While they are held no directory on the way can be renamed, deleted or replaced by a junction (Windows answers such
/// an attempt with a sharing violation), so the full path the Win32 call then resolves again passes through exactly the
/// directories that were checked. Opens and creates open the entry itself without following it and check it on the
/// handle they return; the source of a hard link is checked on a handle too (not pinned, see <see cref="CheckAccess"/>).
/// </para>
/// <para>
/// The limits: the root itself and the directories above it are opened by path, following links (they are the user's
/// choice, as on Linux). A process that already held a directory on the way with delete access makes the step fail
/// with a sharing violation (reported as <see cref="PatchErrorCode.FileLocked"/>, which the layered commit retries), not
/// wait. <see cref="PortableFileOps.Stat"/> and the last-write-time calls stay path-based: they read, and every step that
/// writes, links or deletes what they reported is checked. The steps are not relative to a handle (NtCreateFile with a
/// root directory): they rely on the held handles pinning the names, which Windows guarantees for the names of open
/// directories opened without delete sharing.
/// </para>
/// </remarks>
[SupportedOSPlatform("windows")]
internal sealed class WindowsFileOps : PortableFileOps
{
    private const uint HeldDirectoryShare = Kernel32.FILE_SHARE_READ | Kernel32.FILE_SHARE_WRITE;

    // Set once a volume answers that it cannot do a POSIX-semantics rename (older Windows, FAT, some network
    // shares, Wine without FileRenameInfoEx): later files go straight to layer 1.
    private static volatile bool _posixRenameUnsupported;

    private readonly Action<string>? _whileHeld;

    public WindowsFileOps()
    {
    }

    /// <summary>
    /// Calls <paramref name="whileHeld"/> with the step's path once the directories on its way are held and before the
    /// step runs: the Wine scenarios race a rename or a junction against the held handles there.
    /// </summary>
    internal WindowsFileOps(Action<string> whileHeld) => _whileHeld = whileHeld;

    /// <summary>The Win32 error with which the system declined a POSIX-semantics rename (0 while none did); for diagnostics.</summary>
    public static int PosixRenameDeclinedError { get; private set; }

    public override bool ReportsWin32Errors => true;

    /// <summary>
    /// Holds the directories on the way to <paramref name="path"/> below its confined root (and the entry itself when
    /// <paramref name="includeLast"/>), refusing a junction or symlink among them; nothing for a path below no root.
    /// </summary>
    private static ReparsePoints.Held<SafeFileHandle> Hold(string path, bool includeLast) =>
        ReparsePoints.Hold(path, includeLast, OpenRoot, (component, entry) => OpenComponent(component, pin: !entry));

    /// <summary>As <see cref="Hold"/> with the entry included, for a directory that is itself pinned (listed).</summary>
    private static ReparsePoints.Held<SafeFileHandle> HoldDirectory(string path) =>
        ReparsePoints.Hold(path, includeLast: true, OpenRoot, (component, _) => OpenComponent(component, pin: true));

    /// <summary>Runs the test hook, if any, once every handle of a step is held.</summary>
    private void Held(string path) => _whileHeld?.Invoke(path);

    /// <summary>
    /// The access a pinning handle asks for. Windows checks and records share modes only for opens asking for data or
    /// delete access: a handle with attribute access alone denies nobody anything (Wine behaves the same), so a directory
    /// is held with <c>FILE_LIST_DIRECTORY</c> too.
    /// </summary>
    private const uint PinAccess = Kernel32.FILE_LIST_DIRECTORY | Kernel32.FILE_READ_ATTRIBUTES | Kernel32.SYNCHRONIZE;

    /// <summary>
    /// The access with which the entry itself (a hard link's source file) is opened for its check: attributes only, so
    /// it takes part in no sharing check and a file another process holds without sharing can still be backed up. It is
    /// checked on the handle but not pinned: a link put at its name between the check and CreateHardLink is not excluded
    /// (the directories on the way are pinned, so only a process able to replace that file in the install could do it).
    /// </summary>
    private const uint CheckAccess = Kernel32.FILE_READ_ATTRIBUTES | Kernel32.SYNCHRONIZE;

    /// <summary>The confined root, following it (the user's choice), held without delete sharing; null when missing.</summary>
    private static SafeFileHandle? OpenRoot(string root) => OpenHeld(root, PinAccess, Kernel32.FILE_FLAG_BACKUP_SEMANTICS);

    /// <summary>Opens an existing entry to hold it (sharing read and write, not delete); null when it is missing.</summary>
    private static SafeFileHandle? OpenHeld(string path, uint access, uint flags)
    {
        var handle = Kernel32.CreateFile(path, access, HeldDirectoryShare, IntPtr.Zero, Kernel32.OPEN_EXISTING, flags, IntPtr.Zero);
        if (!handle.IsInvalid) return handle;
        var error = Marshal.GetLastPInvokeError();
        handle.Dispose();
        if (NativeErrors.IsNotFoundWin32(error)) return null;
        throw NativeErrors.FromWin32(error, "hold the directory", path);
    }

    /// <summary>
    /// A component opened without following it, with what its handle says it is; pinned (renames and deletes of it
    /// refused while held) when <paramref name="pin"/>, only checked otherwise.
    /// </summary>
    private static ReparsePoints.Opened<SafeFileHandle> OpenComponent(string path, bool pin)
    {
        var handle = OpenHeld(path, pin ? PinAccess : CheckAccess, Kernel32.FILE_FLAG_BACKUP_SEMANTICS | Kernel32.FILE_FLAG_OPEN_REPARSE_POINT);
        return handle is null
            ? new(null, new ReparsePoints.Component(false, false))
            : new(handle, new ReparsePoints.Component(true, RedirectsOrClose(handle, path)));
    }

    /// <summary>Whether the open handle is a junction or symlink (closing it and throwing when Windows cannot say).</summary>
    private static bool RedirectsOrClose(SafeFileHandle handle, string path)
    {
        if (Kernel32.GetFileInformationByHandleEx(handle, Kernel32.FileAttributeTagInfoClass, out var info, (uint)Marshal.SizeOf<Kernel32.FileAttributeTagInfo>()))
            return ReparsePoints.Redirects(info.FileAttributes, info.ReparseTag);
        var error = Marshal.GetLastPInvokeError();
        handle.Dispose();
        throw NativeErrors.FromWin32(error, "read the reparse tag", path);
    }

    /// <summary>
    /// Opens the entry itself without following it (CreateFile with <c>FILE_FLAG_OPEN_REPARSE_POINT</c>) while the
    /// directories on its way are held, and refuses it when the handle turns out to be a junction or symlink.
    /// </summary>
    private NamedFileStream OpenBeneath(string path, uint access, uint share, uint disposition, uint flags, FileAccess streamAccess, string operation)
    {
        using var held = Hold(path, includeLast: false);
        Held(path);
        var handle = Kernel32.CreateFile(path, access, share, IntPtr.Zero, disposition, flags | Kernel32.FILE_FLAG_OPEN_REPARSE_POINT, IntPtr.Zero);
        if (handle.IsInvalid)
        {
            var error = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw NativeErrors.FromWin32(error, operation, path);
        }

        if (RedirectsOrClose(handle, path))
        {
            handle.Dispose();
            throw ReparsePoints.Refusal(path, path);
        }

        try
        {
            return new NamedFileStream(handle, streamAccess, path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            handle.Dispose();
            throw NativeErrors.FromException(ex, operation, path);
        }
    }

    private static bool Confined(string path) => ConfinedRoots.Of(Path.TrimEndingDirectorySeparator(path)) is { } root && path.Length > root.Length;

    public override Stream OpenRead(string path) => !Confined(path)
        ? base.OpenRead(path)
        : OpenBeneath(path, Kernel32.GENERIC_READ, Kernel32.FILE_SHARE_READ | Kernel32.FILE_SHARE_WRITE | Kernel32.FILE_SHARE_DELETE,
            Kernel32.OPEN_EXISTING, Kernel32.FILE_FLAG_SEQUENTIAL_SCAN, FileAccess.Read, "open for reading");

    /// <summary>
    /// Creates the file without following a link already at its name: CreateFile with <c>CREATE_ALWAYS</c> and
    /// <c>FILE_FLAG_OPEN_REPARSE_POINT</c> opens such a link itself, which is then refused without writing a byte.
    /// </summary>
    public override Stream Create(string path) => !Confined(path)
        ? base.Create(path)
        : OpenBeneath(path, Kernel32.GENERIC_WRITE, 0, Kernel32.CREATE_ALWAYS, 0, FileAccess.Write, "create");

    public override IEnumerable<string> ListNames(string directory)
    {
        using var held = HoldDirectory(directory);
        Held(directory);
        return base.ListNames(directory);
    }

    /// <summary>
    /// Makes missing parents first, each with its own parents held; then the directory itself, which is checked once
    /// made (an existing junction at its name is refused, not taken for the directory).
    /// </summary>
    public override void CreateDirectory(string path)
    {
        if (!Confined(path))
        {
            base.CreateDirectory(path);
            return;
        }

        var parent = Path.GetDirectoryName(path);
        if (parent is not null && Confined(parent) && !Directory.Exists(parent)) CreateDirectory(parent);
        using var held = Hold(path, includeLast: false);
        Held(path);
        base.CreateDirectory(path);
        using var made = Hold(path, includeLast: true);
    }

    /// <summary>Deletes the entry itself (a symlink or junction is removed, not followed); the directories on the way are held.</summary>
    public override void DeleteFile(string path)
    {
        using var held = Hold(path, includeLast: false);
        Held(path);
        base.DeleteFile(path);
    }

    public override void DeleteDirectory(string path)
    {
        using var held = Hold(path, includeLast: false);
        Held(path);
        base.DeleteDirectory(path);
    }

    public override void CopySymlink(string from, string to)
    {
        using var held = Hold(to, includeLast: false);
        Held(to);
        base.CopySymlink(from, to);
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
            throw NativeErrors.FromException(ex, "FlushFileBuffers", NamedFileStream.PathOf(fs));
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
        using var heldFrom = Hold(from, includeLast: false);
        using var heldTo = Hold(to, includeLast: false);
        Held(to);
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
        using var heldExisting = Hold(existing, includeLast: true);
        using var heldNew = Hold(newPath, includeLast: false);
        Held(existing);
        if (Kernel32.CreateHardLink(newPath, existing, IntPtr.Zero)) return true;
        var error = Marshal.GetLastPInvokeError();
        if (NativeErrors.HardLinkImpossibleWin32(error)) return false;
        throw NativeErrors.FromWin32(error, $"CreateHardLink '{newPath}'", existing);
    }

    public override bool TryPosixRename(string from, string to)
    {
        if (_posixRenameUnsupported) return false;
        using var heldFrom = Hold(from, includeLast: false);
        using var heldTo = Hold(to, includeLast: false);
        Held(to);
        return PosixRename(from, to);
    }

    private static unsafe bool PosixRename(string from, string to)
    {
        // DELETE access on the source is what a rename needs; GENERIC_WRITE lets FlushFileBuffers run on the
        // same handle. Sharing read and delete keeps antivirus scanners that already hold it from failing us. The
        // staged file is opened without following a link at its name, and one found there is refused.
        using var handle = Kernel32.CreateFile(from, Kernel32.DELETE | Kernel32.GENERIC_WRITE | Kernel32.SYNCHRONIZE,
            Kernel32.FILE_SHARE_READ | Kernel32.FILE_SHARE_DELETE, IntPtr.Zero, Kernel32.OPEN_EXISTING, Kernel32.FILE_FLAG_OPEN_REPARSE_POINT, IntPtr.Zero);
        if (handle.IsInvalid) throw NativeErrors.FromWin32(Marshal.GetLastPInvokeError(), "open staged file for rename", from);
        if (RedirectsOrClose(handle, from)) throw ReparsePoints.Refusal(from, from);
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
