using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>
/// The real file system through .NET's portable file APIs. Each platform's implementation (<see cref="WindowsFileOps"/>,
/// <see cref="UnixFileOps"/> and its Linux and macOS kinds) derives from it and supplies durability, atomic renames and
/// links, and replaces whatever its system does better; <see cref="FileOps.Instance"/> picks one.
/// </summary>
internal abstract class PortableFileOps : IFileOps
{
    /// <summary>
    /// lstat semantics from .NET's file info. Device and inode are unknown (0) here: .NET does not expose them; a
    /// dangling symlink reports neither file nor directory but still has a link target.
    /// </summary>
    public virtual EntryInfo Stat(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        if (!info.Exists)
        {
            info = new DirectoryInfo(path);
            if (!info.Exists)
            {
                // A dangling symlink reports neither file nor directory but still has a link target.
                var probe = new FileInfo(path);
                return probe.LinkTarget is not null ? new EntryInfo(EntryKind.Symlink, 0, false, 0, 0) : default;
            }
        }

        if (info.LinkTarget is not null) return new EntryInfo(EntryKind.Symlink, 0, false, 0, 0);
        if (info is FileInfo fi)
        {
            if ((fi.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) != 0)
                return new EntryInfo(EntryKind.Other, 0, false, 0, 0);
            return new EntryInfo(EntryKind.File, fi.Length, IsExecutable(fi), 0, 0);
        }

        return new EntryInfo(EntryKind.Directory, 0, false, 0, 0);
    }

    /// <summary>Whether the owner may execute the file (never on Windows, which has no such bit).</summary>
    protected virtual bool IsExecutable(FileInfo file) => false;

    public virtual IEnumerable<string> ListNames(string directory)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(directory).Select(p => Path.GetFileName(p)).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "list directory", directory);
        }
    }

    public virtual Stream OpenRead(string path) => Open(path, "open for reading", new FileStreamOptions
    {
        Mode = FileMode.Open,
        Access = FileAccess.Read,
        Share = FileShare.ReadWrite | FileShare.Delete,
        BufferSize = 0,
        Options = FileOptions.SequentialScan,
    });

    public virtual Stream Create(string path) => Open(path, "create", new FileStreamOptions
    {
        Mode = FileMode.Create,
        Access = FileAccess.Write,
        Share = FileShare.None,
        BufferSize = 0,
    });

    public virtual Stream OpenToContinue(string path, long length)
    {
        var stream = Open(path, "open to continue", new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
        });
        try
        {
            stream.SetLength(length);
            stream.Position = length;
            return stream;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw NativeErrors.FromException(ex, "cut", path);
        }
    }

    private static FileStream Open(string path, string operation, FileStreamOptions options)
    {
        try
        {
            return new FileStream(path, options);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, operation, path);
        }
    }

    public virtual void CreateDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "create directory", path);
        }
    }

    public virtual void DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "delete", path);
        }
    }

    public virtual void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: false);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "remove directory", path);
        }
    }

    public virtual void CopySymlink(string from, string to)
    {
        try
        {
            var target = new FileInfo(from).LinkTarget ?? throw new IOException("not a symlink");
            if (TryCreateSymlinkBeneath(target, to)) return;
            if (Directory.Exists(from)) Directory.CreateSymbolicLink(to, target);
            else File.CreateSymbolicLink(to, target);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "copy symlink", from);
        }
    }

    public virtual DateTime? LastWriteUtc(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? info.LastWriteTimeUtc : null;
    }

    public virtual void SetLastWriteUtc(string path, DateTime value)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, value);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "set the modification time of", path);
        }
    }

    public virtual long AvailableFreeSpace(string path)
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(path)).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Unknown free space must not block an update; staging will still fail cleanly on ENOSPC.
            return long.MaxValue;
        }
    }

    /// <summary>Makes the symlink the way the platform confines it; false where the plain call is to be used.</summary>
    protected virtual bool TryCreateSymlinkBeneath(string target, string path) => false;

    public abstract void Sync(Stream stream);

    public abstract void SyncDirectory(string path);

    public abstract void Rename(string from, string to);

    /// <summary>No atomic exchange of two directories by default: the caller falls back.</summary>
    public virtual bool TryExchange(string a, string b) => false;

    public abstract bool TryHardLink(string existing, string newPath);

    public virtual bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable) => false;

    public virtual IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
        TreeOps.ReadDirectoryByPath(this, root, relative);

    public virtual bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath) =>
        TryHardLink(RelativePath.Join(tree.Root, relative), newPath);

    public virtual bool TryPosixRename(string from, string to) => false;

    public virtual bool ReportsWin32Errors => false;

    public virtual bool FlushFileSystem(string path) => false;

    public virtual void SetExecutable(string path, bool executable)
    {
    }

    public virtual bool IsMountPoint(string directory) => false;

    public virtual EntryOwner? Owner(string path) => null;

    public virtual uint? EffectiveUser => null;

    public virtual void SetOwner(string path, uint uid, uint gid)
    {
    }

    public virtual void AllowOwnerWrite(string directory)
    {
    }

    public virtual void RemoveWriteByOthers(string path)
    {
    }

    public virtual void CopyMode(string from, string to)
    {
    }
}
