using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// Opens a file of a patch (manifest, signature, blob) for reading as what it must be: a regular file. The patch
/// directory is hostile, and may have been extracted from an archive that can hold anything: a FIFO would block an
/// ordinary open (and every read) forever while the lock is held, a symlink would let the patch read a device or
/// another user's file. So the final component is opened without following a symlink and without blocking, and the
/// open descriptor (not the path) is checked: a regular file, or a refusal with a 1xx code.
/// </summary>
internal static class PatchFileOpen
{
    /// <summary>
    /// The open file, read-only and unbuffered; null when nothing is at <paramref name="path"/>. Throws
    /// <see cref="PatchErrorCode.PatchFileNotRegular"/> for a symlink (or a symlink loop on the way), a FIFO, a device,
    /// a socket or a directory.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What it is, for the message ("the manifest", "blob ab/cd…").</param>
    public static FileStream? OpenRegular(string path, string what)
    {
        if (OperatingSystem.IsWindows()) return OpenWindows(path);
        var handle = Libc.open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (handle.IsInvalid)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            if (errno == NativeErrors.ENOENT) return null;
            if (errno == NativeErrors.ELOOP || errno == NativeErrors.ENOTDIR || errno == NativeErrors.ENXIO)
                throw NotRegular(path, what, "a symlink, or reached through a symlink loop or a non-directory");
            throw NativeErrors.FromErrno(errno, "open for reading", path);
        }

        try
        {
            if (OperatingSystem.IsLinux() && KindOf(handle) is { } kind && kind != RegularFile)
                throw NotRegular(path, what, DescribeKind(kind));
            var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
            // Elsewhere (macOS) the stream tells what fstat would: only regular files (and devices, refused by the
            // symlink rule unless placed in the patch itself) seek.
            if (!stream.CanSeek)
            {
                stream.Dispose();
                throw NotRegular(path, what, "not a regular file");
            }

            return stream;
        }
        catch (Exception ex) when (ex is not PatcherException)
        {
            handle.Dispose();
            // .NET refuses a directory descriptor with UnauthorizedAccessException.
            throw ex is UnauthorizedAccessException ? NotRegular(path, what, "a directory") : NativeErrors.FromException(ex, "open for reading", path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private const uint RegularFile = Libc.S_IFREG;

    /// <summary>The file type bits of the open handle (fstat through statx), or null when it cannot be read.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static uint? KindOf(SafeFileHandle handle) =>
        LinuxFiles.TryStat(handle, out var s) ? s.Mode & Libc.S_IFMT : null;

    private static string DescribeKind(uint kind) => kind switch
    {
        Libc.S_IFIFO => "a FIFO",
        Libc.S_IFCHR => "a character device",
        Libc.S_IFDIR => "a directory",
        Libc.S_IFBLK => "a block device",
        Libc.S_IFLNK => "a symlink",
        Libc.S_IFSOCK => "a socket",
        _ => "not a regular file",
    };

    private static FileStream? OpenWindows(string path)
    {
        try
        {
            return new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite | FileShare.Delete, BufferSize = 0 });
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, "open for reading", path);
        }
    }

    private static PatcherException NotRegular(string path, string what, string kind) =>
        new(PatchErrorCode.PatchFileNotRegular, $"{what} is {kind}, not a regular file", path);
}
