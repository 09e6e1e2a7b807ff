namespace Patching.IO;

/// <summary>
/// The real file system. Portable parts here; durability and atomic primitives in the platform partials
/// (<c>FileOps.Unix.cs</c>, <c>FileOps.Windows.cs</c>).
/// </summary>
internal sealed partial class FileOps : IFileOps
{
    public static FileOps Instance { get; } = new();

    private FileOps()
    {
    }

    public EntryInfo Stat(string path)
    {
        // Linux: one statx call answers everything (kind, size, mode, identity). The portable path below costs
        // several syscalls per entry (stat, lstat, readlink, statx), which dominated walks of large installs.
        if (OperatingSystem.IsLinux()) return StatLinux(path);
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
        var (dev, ino) = Identity(path);
        if (info is FileInfo fi)
        {
            if ((fi.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) != 0)
                return new EntryInfo(EntryKind.Other, 0, false, dev, ino);
            return new EntryInfo(EntryKind.File, fi.Length, IsExecutable(fi), dev, ino);
        }

        return new EntryInfo(EntryKind.Directory, 0, false, dev, ino);
    }

    public IEnumerable<string> ListNames(string directory)
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

    public Stream OpenRead(string path)
    {
        if (!OperatingSystem.IsWindows() && TryOpenBeneath(path, create: false) is { } beneath) return beneath;
        try
        {
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.ReadWrite | FileShare.Delete,
                BufferSize = 0,
                Options = FileOptions.SequentialScan,
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "open for reading", path);
        }
    }

    public Stream Create(string path)
    {
        if (!OperatingSystem.IsWindows() && TryOpenBeneath(path, create: true) is { } beneath) return beneath;
        try
        {
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 0,
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "create", path);
        }
    }

    public void CreateDirectory(string path)
    {
        if (!OperatingSystem.IsWindows() && TryMakeDirectoryBeneath(path)) return;
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "create directory", path);
        }
    }

    public void DeleteFile(string path)
    {
        if (!OperatingSystem.IsWindows() && TryUnlinkBeneath(path, directory: false)) return;
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "delete", path);
        }
    }

    public void DeleteDirectory(string path)
    {
        if (!OperatingSystem.IsWindows() && TryUnlinkBeneath(path, directory: true)) return;
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

    public void CopySymlink(string from, string to)
    {
        try
        {
            var target = new FileInfo(from).LinkTarget ?? throw new IOException("not a symlink");
            if (!OperatingSystem.IsWindows() && TrySymlinkBeneath(target, to)) return;
            if (Directory.Exists(from)) Directory.CreateSymbolicLink(to, target);
            else File.CreateSymbolicLink(to, target);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "copy symlink", from);
        }
    }

    public DateTime? LastWriteUtc(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? info.LastWriteTimeUtc : null;
    }

    public void SetLastWriteUtc(string path, DateTime value)
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

    public long AvailableFreeSpace(string path)
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
}
