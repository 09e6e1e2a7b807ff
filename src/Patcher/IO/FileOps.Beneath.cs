using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// Handle-relative steps below the install and the state directory (Linux and macOS). Every path Patcher changes or
/// reads there was found by a walk that never follows symlinks; but a process of the player (a mod tool, a running
/// game) can replace a directory of it by a symlink to anywhere afterwards, and a step by full path would then write,
/// link or delete outside, with the rights of the updater. So a step on a path below a confined root first opens the
/// directory holding its last component from the root one component at a time with <c>O_NOFOLLOW|O_DIRECTORY</c>, and
/// then acts relative to that descriptor (<c>renameat</c>, <c>linkat</c>, <c>unlinkat</c>, <c>mkdirat</c>,
/// <c>openat</c>, <c>symlinkat</c>): a symlink on the way fails the step with <see cref="PatchErrorCode.SymlinkEscape"/>,
/// and a swap after the open cannot redirect it. The last component itself is never followed either (renames, links
/// and unlinks act on a symlink, not its target; opens use <c>O_NOFOLLOW</c>).
/// </summary>
/// <remarks>
/// Paths outside every confined root (the patch, the install's parent) keep the plain calls. Windows keeps its path
/// calls: there is no reparse-point check yet (docs/threat-model.md).
/// </remarks>
internal sealed partial class FileOps
{
    private static readonly ConcurrentDictionary<string, byte> ConfinedRoots = new(StringComparer.Ordinal);

    /// <summary>
    /// From now on, steps on paths below <paramref name="root"/> (an install or state directory, as the layout names it)
    /// never pass through a symlink below it. Roots are only ever added: the rule holds for the process's lifetime.
    /// </summary>
    public static void Confine(string root)
    {
        if (OperatingSystem.IsWindows()) return;
        ConfinedRoots.TryAdd(Path.TrimEndingDirectorySeparator(root), 0);
    }

    /// <summary>The directory holding a path's last component, opened beneath its confined root; or not confined.</summary>
    private sealed class Beneath : IDisposable
    {
        private readonly SafeFileHandle? _handle;

        public Beneath(SafeFileHandle? handle, string name, string path)
        {
            _handle = handle;
            Name = name;
            Path = path;
        }

        /// <summary>False when the path is below no confined root, or its parent is missing: the caller uses the plain call.</summary>
        public bool Confined => _handle is not null;

        /// <summary>The descriptor to pass to an *at call (AT_FDCWD when not confined).</summary>
        public int Fd => _handle is null ? Libc.AT_FDCWD : (int)_handle.DangerousGetHandle();

        /// <summary>The name to pass with <see cref="Fd"/>: the last component, or the full path when not confined.</summary>
        public string At => _handle is null ? Path : Name;

        public string Name { get; }
        public string Path { get; }

        public void Dispose() => _handle?.Dispose();
    }

    /// <summary>
    /// Opens the directory holding <paramref name="path"/>'s last component from the nearest confined root, one component
    /// at a time, never following a symlink. Throws <see cref="PatchErrorCode.SymlinkEscape"/> when a component is one.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static Beneath OpenBeneath(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        var parent = System.IO.Path.GetDirectoryName(path);
        if (ConfinedRoots.IsEmpty || parent is null || name.Length == 0) return new Beneath(null, name, path);
        var root = parent;
        while (root is not null && !ConfinedRoots.ContainsKey(root)) root = System.IO.Path.GetDirectoryName(root);
        if (root is null) return new Beneath(null, name, path);

        const int directory = 0; // O_RDONLY
        var flags = directory | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC;
        var fd = Libc.open(root, flags);
        var at = root;
        if (fd >= 0 && parent.Length > root.Length)
        {
            foreach (var component in parent[(root.Length + 1)..].Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                var next = Libc.openat(fd, component, flags);
                var errno = Marshal.GetLastPInvokeError();
                _ = Libc.close(fd);
                at = System.IO.Path.Join(at, component);
                fd = next;
                if (fd < 0)
                {
                    Marshal.SetLastPInvokeError(errno);
                    break;
                }
            }
        }

        if (fd >= 0) return new Beneath(new SafeFileHandle(fd, ownsHandle: true), name, path);
        var failure = Marshal.GetLastPInvokeError();
        if (IsSymlinkRefusal(failure, at)) throw Escape(at, path);
        // Missing, not a directory, not searchable: the plain call reports it as it always has.
        return new Beneath(null, name, path);
    }

    /// <summary>
    /// Whether an open with <c>O_NOFOLLOW|O_DIRECTORY</c> of <paramref name="path"/> failed because it is a symlink: Linux
    /// reports that as ENOTDIR (the O_DIRECTORY check comes first), so ENOTDIR is told apart from a file by an lstat.
    /// </summary>
    private static bool IsSymlinkRefusal(int errno, string path) =>
        errno == NativeErrors.ELOOP || (errno == NativeErrors.ENOTDIR && Instance.Stat(path).Kind == EntryKind.Symlink);

    private static PatcherException Escape(string symlink, string path) =>
        new(PatchErrorCode.SymlinkEscape, $"'{symlink}' became a symlink; refusing to reach '{path}' through it", path) { NativeError = NativeErrors.ELOOP };

    /// <summary>Renames relative to the two parents; false when neither path is confined (the caller renames by path).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool TryRenameBeneath(string from, string to)
    {
        using var a = OpenBeneath(from);
        using var b = OpenBeneath(to);
        if (!a.Confined && !b.Confined) return false;
        if (Libc.renameat(a.Fd, a.At, b.Fd, b.At) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), $"rename to '{to}'", from);
        return true;
    }

    /// <summary>Exchanges relative to the two parents (Linux); null when neither path is confined.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static int? TryExchangeBeneath(string a, string b)
    {
        if (!OperatingSystem.IsLinux()) return null;
        int rc, errno;
        using (var x = OpenBeneath(a))
        using (var y = OpenBeneath(b))
        {
            if (!x.Confined && !y.Confined) return null;
            rc = Libc.renameat2(x.Fd, x.At, y.Fd, y.At, Libc.RENAME_EXCHANGE);
            errno = Marshal.GetLastPInvokeError();
        }

        // Closing the descriptors may overwrite the error the caller reads.
        Marshal.SetLastPInvokeError(errno);
        return rc;
    }

    /// <summary>linkat relative to the two parents, never following a symlink at the source; null when neither is confined.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static int? TryLinkBeneath(string existing, string newPath)
    {
        int rc, errno;
        using (var a = OpenBeneath(existing))
        using (var b = OpenBeneath(newPath))
        {
            if (!a.Confined && !b.Confined) return null;
            rc = Libc.linkat(a.Fd, a.At, b.Fd, b.At, 0);
            errno = Marshal.GetLastPInvokeError();
        }

        // Closing the descriptors may overwrite the error the caller reads.
        Marshal.SetLastPInvokeError(errno);
        return rc;
    }

    /// <summary>unlinkat; a missing name is not an error (as File.Delete and a missing directory). False when not confined.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool TryUnlinkBeneath(string path, bool directory)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined) return false;
        if (Libc.unlinkat(p.Fd, p.Name, directory ? Libc.AT_REMOVEDIR : 0) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == NativeErrors.ENOENT) return true;
        throw NativeErrors.FromErrno(errno, directory ? "remove directory" : "delete", path);
    }

    /// <summary>
    /// mkdirat, making missing parents first (as Directory.CreateDirectory), each beneath the root; an existing directory
    /// is fine, an existing symlink is an escape. False when not confined.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool TryMakeDirectoryBeneath(string path)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined)
        {
            var parent = System.IO.Path.GetDirectoryName(path);
            // A missing parent below a root is made beneath it too; one outside every root is the plain call's.
            if (parent is null || !IsBelowRoot(parent) || Directory.Exists(parent)) return false;
            if (!TryMakeDirectoryBeneath(parent)) return false;
            return TryMakeDirectoryBeneath(path);
        }

        if (Libc.mkdirat(p.Fd, p.Name, 0x1FF) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        const int EEXIST = 17;
        if (errno != EEXIST) throw NativeErrors.FromErrno(errno, "create directory", path);
        var existing = Libc.openat(p.Fd, p.Name, Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC);
        if (existing >= 0)
        {
            _ = Libc.close(existing);
            return true;
        }

        var why = Marshal.GetLastPInvokeError();
        if (IsSymlinkRefusal(why, path)) throw Escape(path, path);
        throw NativeErrors.FromErrno(EEXIST, "create directory", path);
    }

    private static bool IsBelowRoot(string path)
    {
        for (var p = path; p is not null; p = System.IO.Path.GetDirectoryName(p))
        {
            if (ConfinedRoots.ContainsKey(p)) return true;
        }

        return false;
    }

    /// <summary>Opens a file beneath its root without following a last symlink; null when not confined or missing (the plain call reports it).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static FileStream? TryOpenBeneath(string path, bool create)
    {
        if (create && !OperatingSystem.IsLinux()) return null;
        using var p = OpenBeneath(path);
        if (!p.Confined) return null;
        var flags = Libc.O_NOFOLLOW | Libc.O_CLOEXEC;
        var fd = create
            ? Libc.openat(p.Fd, p.Name, flags | Libc.O_CREATE_TRUNCATE_WRITE, 0x1B6)
            : Libc.openat(p.Fd, p.Name, flags | Libc.O_NONBLOCK);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == NativeErrors.ELOOP) throw Escape(path, path);
            if (errno == NativeErrors.ENOENT) return null;
            throw NativeErrors.FromErrno(errno, create ? "create" : "open for reading", path);
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            return new FileStream(handle, create ? FileAccess.Write : FileAccess.Read, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            handle.Dispose();
            throw NativeErrors.FromException(ex, create ? "create" : "open for reading", path);
        }
    }

    public void SetOwner(string path, uint uid, uint gid)
    {
        if (!OperatingSystem.IsLinux()) return;
        using var p = OpenBeneath(path);
        if (Libc.fchownat(p.Fd, p.At, uid, gid, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "change the owner of", path);
    }

    /// <summary>Makes a symlink beneath its root. False when not confined.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool TrySymlinkBeneath(string target, string path)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined) return false;
        if (Libc.symlinkat(target, p.Fd, p.Name) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "copy symlink", path);
        return true;
    }
}
