using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// The file system of a Unix: fsync for durability, rename(2) for atomic replacement, hard links, permission bits, and
/// every step below a confined root taken relative to a directory handle (<c>UnixFileOps.Beneath.cs</c>). What only
/// Linux or macOS can do is in <see cref="LinuxFileOps"/> and <see cref="MacFileOps"/>.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal partial class UnixFileOps : PortableFileOps
{
    public override Stream OpenRead(string path) => TryOpenBeneath(path, create: false) ?? base.OpenRead(path);

    public override Stream Create(string path) => TryOpenBeneath(path, create: true) ?? base.Create(path);

    public override void CreateDirectory(string path)
    {
        if (!TryMakeDirectoryBeneath(path)) base.CreateDirectory(path);
    }

    public override void DeleteFile(string path)
    {
        if (!TryUnlinkBeneath(path, directory: false)) base.DeleteFile(path);
    }

    public override void DeleteDirectory(string path)
    {
        if (!TryUnlinkBeneath(path, directory: true)) base.DeleteDirectory(path);
    }

    /// <remarks>
    /// An fsync failure means the kernel may already have dropped the dirty pages: the data is not safe and retrying
    /// would lie. Fatal for the transaction.
    /// </remarks>
    public override void Sync(Stream stream)
    {
        var fs = (FileStream)stream;
        fs.Flush(flushToDisk: false);
        SyncData(fs.SafeFileHandle, NamedFileStream.PathOf(fs));
    }

    /// <summary>Makes the open file's data and metadata durable (fsync).</summary>
    private protected virtual void SyncData(SafeFileHandle file, string path)
    {
        if (Libc.fsync(file) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "fsync", path);
    }

    public override void SyncDirectory(string path)
    {
        using var dir = OpenDirectory(path);
        if (dir.IsInvalid) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "open directory for fsync", path);
        if (Libc.fsync(dir) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "fsync directory", path);
    }

    /// <summary>A read-only, close-on-exec handle of a directory (to fsync or syncfs it); invalid with errno set on failure.</summary>
    private protected static SafeFileHandle OpenDirectory(string path) =>
        Libc.open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);

    public override bool TryHardLink(string existing, string newPath)
    {
        if (LinkBeneath(existing, newPath, out var errno) == 0) return true;
        if (NativeErrors.HardLinkImpossible(errno)) return false;
        throw NativeErrors.FromErrno(errno, $"hard link to '{newPath}'", existing);
    }

    protected override bool IsExecutable(FileInfo file) => (file.UnixFileMode & UnixFileMode.UserExecute) != 0;

    public override void SetExecutable(string path, bool executable)
    {
        var mode = File.GetUnixFileMode(path);
        const UnixFileMode exec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var wanted = executable ? mode | exec : mode & ~exec;
        if (wanted != mode) File.SetUnixFileMode(path, wanted);
    }

    public override void CopyMode(string from, string to)
    {
        try
        {
            var mode = File.GetUnixFileMode(from);
            if (File.GetUnixFileMode(to) != mode) File.SetUnixFileMode(to, mode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "copy permissions to", to);
        }
    }

    public override void RemoveWriteByOthers(string path) =>
        ChangeMode(path, UnixFileMode.GroupWrite | UnixFileMode.OtherWrite, 0);

    public override void AllowOwnerWrite(string directory) =>
        ChangeMode(directory, 0, UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    /// <summary>Takes <paramref name="remove"/> off and puts <paramref name="add"/> on a path's mode (a symlink is left alone).</summary>
    private void ChangeMode(string path, UnixFileMode remove, UnixFileMode add)
    {
        if (Stat(path).Kind is not (EntryKind.Directory or EntryKind.File)) return;
        try
        {
            var mode = File.GetUnixFileMode(path);
            var wanted = (mode & ~remove) | add;
            if (wanted != mode) File.SetUnixFileMode(path, wanted);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "set permissions of", path);
        }
    }
}
