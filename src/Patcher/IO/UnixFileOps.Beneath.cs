using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// The roots (an install, a state directory) below which no step may pass through a symlink. Only ever added: the rule
/// holds for the process's lifetime.
/// </summary>
internal static class ConfinedRoots
{
    private static readonly ConcurrentDictionary<string, byte> Roots = new(StringComparer.Ordinal);

    public static bool IsEmpty => Roots.IsEmpty;

    public static void Add(string root) => Roots.TryAdd(Path.TrimEndingDirectorySeparator(root), 0);

    public static bool Contains(string path) => Roots.ContainsKey(path);

    /// <summary>The nearest confined root holding <paramref name="path"/> (itself included), or null.</summary>
    public static string? Of(string path)
    {
        var root = path;
        while (root is not null && !Roots.ContainsKey(root)) root = Path.GetDirectoryName(root);
        return root;
    }
}

/// <summary>
/// Handle-relative steps below the install and the state directory (Linux and macOS). Every path Patcher changes or
/// reads there was found by a walk that never follows symlinks; but a process of the player (a mod tool, a running
/// game) can replace a directory of it by a symlink to anywhere afterwards, and a step by full path would then write,
/// link or delete outside, with the rights of the updater. So a step on a path below a confined root first opens the
/// directory holding its last component from the root one component at a time with <c>O_NOFOLLOW|O_DIRECTORY</c>, and
/// then acts relative to that handle (<c>renameat</c>, <c>linkat</c>, <c>unlinkat</c>, <c>mkdirat</c>,
/// <c>openat</c>, <c>symlinkat</c>): a symlink on the way fails the step with <see cref="PatchErrorCode.SymlinkEscape"/>,
/// and a swap after the open cannot redirect it. The last component itself is never followed either (renames, links
/// and unlinks act on a symlink, not its target; opens use <c>O_NOFOLLOW</c>).
/// </summary>
/// <remarks>
/// Paths outside every confined root (the patch, the install's parent) keep the plain calls. The root itself is opened
/// by its full path: the directories above it are the user's choice, not the install's.
/// </remarks>
internal partial class UnixFileOps
{
    /// <summary>The directory holding a path's last component, opened beneath its confined root; or not confined.</summary>
    private protected sealed class Beneath : IDisposable
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

        /// <summary>The directory handle to pass to an *at call (the current directory when not confined).</summary>
        public SafeFileHandle Dir => _handle ?? Libc.CurrentDirectory;

        /// <summary>The name to pass with <see cref="Dir"/>: the last component, or the full path when not confined.</summary>
        public string At => _handle is null ? Path : Name;

        public string Name { get; }
        public string Path { get; }

        public void Dispose() => _handle?.Dispose();
    }

    private protected static int DirectoryFlags => Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC;

    /// <summary>
    /// Opens the directory holding <paramref name="path"/>'s last component from the nearest confined root, one component
    /// at a time, never following a symlink. Throws <see cref="PatchErrorCode.SymlinkEscape"/> when a component is one.
    /// </summary>
    private protected Beneath OpenBeneath(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        var parent = System.IO.Path.GetDirectoryName(path);
        if (ConfinedRoots.IsEmpty || parent is null || name.Length == 0) return new Beneath(null, name, path);
        var root = ConfinedRoots.Of(parent);
        if (root is null) return new Beneath(null, name, path);

        var handle = Libc.open(root, DirectoryFlags);
        var at = root;
        var walked = WalkedScope.Tree is { } tree && Path.TrimEndingDirectorySeparator(tree.Root) == root ? tree : null;
        var relative = "";
        if (walked is not null && !handle.IsInvalid) CheckWalkedDirectory(walked, handle, relative);
        if (!handle.IsInvalid && parent.Length > root.Length)
        {
            foreach (var component in parent[(root.Length + 1)..].Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                var next = Libc.openat(handle, component, DirectoryFlags);
                var errno = Marshal.GetLastPInvokeError();
                handle.Dispose();
                at = System.IO.Path.Join(at, component);
                handle = next;
                if (handle.IsInvalid)
                {
                    Marshal.SetLastPInvokeError(errno);
                    break;
                }

                relative = relative.Length == 0 ? component : relative + "/" + component;
                if (walked is not null) CheckWalkedDirectory(walked, handle, relative);
            }
        }

        if (!handle.IsInvalid) return new Beneath(handle, name, path);
        var failure = Marshal.GetLastPInvokeError();
        handle.Dispose();
        if (IsSymlinkRefusal(failure, at)) throw Escape(at, path);
        // Missing, not a directory, not searchable: the plain call reports it as it always has.
        return new Beneath(null, name, path);
    }

    /// <summary>
    /// With a walk in scope (<see cref="WalkedScope"/>): throws <see cref="PatchErrorCode.InstallEntryReplaced"/>, closing
    /// <paramref name="dir"/>, when the directory opened at <paramref name="relative"/> is not the one the walk found
    /// there. Nothing where the system reports no identities.
    /// </summary>
    private protected virtual void CheckWalkedDirectory(WalkedTree tree, SafeFileHandle dir, string relative)
    {
    }

    /// <summary>
    /// Whether an open with <c>O_NOFOLLOW|O_DIRECTORY</c> of <paramref name="path"/> failed because it is a symlink: Linux
    /// reports that as ENOTDIR (the O_DIRECTORY check comes first), so ENOTDIR is told apart from a file by an lstat.
    /// </summary>
    private protected bool IsSymlinkRefusal(int errno, string path) =>
        errno == NativeErrors.ELOOP || (errno == NativeErrors.ENOTDIR && Stat(path).Kind == EntryKind.Symlink);

    private protected static PatcherException Escape(string symlink, string path) =>
        new(PatchErrorCode.SymlinkEscape, $"'{symlink}' became a symlink; refusing to reach '{path}' through it", path) { NativeError = NativeErrors.ELOOP };

    /// <summary>Runs an *at call and keeps its errno past the closing of the handles, which may overwrite it.</summary>
    private protected static int KeepErrno(Func<int> call, out int errno)
    {
        var rc = call();
        errno = Marshal.GetLastPInvokeError();
        return rc;
    }

    /// <summary>Renames relative to the two parents (by path where neither is confined).</summary>
    public override void Rename(string from, string to)
    {
        using var a = OpenBeneath(from);
        using var b = OpenBeneath(to);
        if (Libc.renameat(a.Dir, a.At, b.Dir, b.At) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), $"rename to '{to}'", from);
    }

    /// <summary>linkat relative to the two parents, never following a symlink at the source; errno in <paramref name="errno"/>.</summary>
    private int LinkBeneath(string existing, string newPath, out int errno)
    {
        using var a = OpenBeneath(existing);
        using var b = OpenBeneath(newPath);
        return KeepErrno(() => Libc.linkat(a.Dir, a.At, b.Dir, b.At, 0), out errno);
    }

    /// <summary>unlinkat; a missing name is not an error (as File.Delete and a missing directory). False when not confined.</summary>
    private bool TryUnlinkBeneath(string path, bool directory)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined) return false;
        if (Libc.unlinkat(p.Dir, p.Name, directory ? Libc.AT_REMOVEDIR : 0) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == NativeErrors.ENOENT) return true;
        throw NativeErrors.FromErrno(errno, directory ? "remove directory" : "delete", path);
    }

    /// <summary>
    /// mkdirat, making missing parents first (as Directory.CreateDirectory), each beneath the root; an existing directory
    /// is fine, an existing symlink is an escape. False when not confined.
    /// </summary>
    private bool TryMakeDirectoryBeneath(string path)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined)
        {
            var parent = System.IO.Path.GetDirectoryName(path);
            // A missing parent below a root is made beneath it too; one outside every root is the plain call's.
            if (parent is null || ConfinedRoots.Of(parent) is null || Directory.Exists(parent)) return false;
            if (!TryMakeDirectoryBeneath(parent)) return false;
            return TryMakeDirectoryBeneath(path);
        }

        const int everyone = 0x1FF; // 0777 less the umask, as mkdir(1)
        if (Libc.mkdirat(p.Dir, p.Name, everyone) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno != NativeErrors.EEXIST) throw NativeErrors.FromErrno(errno, "create directory", path);
        using var existing = Libc.openat(p.Dir, p.Name, DirectoryFlags);
        if (!existing.IsInvalid) return true;
        if (IsSymlinkRefusal(Marshal.GetLastPInvokeError(), path)) throw Escape(path, path);
        throw NativeErrors.FromErrno(NativeErrors.EEXIST, "create directory", path);
    }

    /// <summary>Whether files are created beneath their root (Linux: openat with a mode is not portable to macOS arm64).</summary>
    private protected virtual bool CreatesBeneath => false;

    /// <summary>Opens a file beneath its root without following a last symlink; null when not confined or missing (the plain call reports it).</summary>
    private FileStream? TryOpenBeneath(string path, bool create)
    {
        if (create && !CreatesBeneath) return null;
        using var p = OpenBeneath(path);
        if (!p.Confined) return null;
        var flags = Libc.O_NOFOLLOW | Libc.O_CLOEXEC;
        const int newFileMode = 0x1B6; // 0666 less the umask, as a new file gets
        var handle = create
            ? OpenForCreate(p.Dir, p.Name, flags | Libc.O_CREATE_TRUNCATE_WRITE, newFileMode)
            : Libc.openat(p.Dir, p.Name, flags | Libc.O_NONBLOCK);
        if (handle.IsInvalid)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            if (errno == NativeErrors.ELOOP) throw Escape(path, path);
            if (errno == NativeErrors.ENOENT) return null;
            throw NativeErrors.FromErrno(errno, create ? "create" : "open for reading", path);
        }

        try
        {
            return new NamedFileStream(handle, create ? FileAccess.Write : FileAccess.Read, path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            handle.Dispose();
            throw NativeErrors.FromException(ex, create ? "create" : "open for reading", path);
        }
    }

    /// <summary>openat with a mode, where <see cref="CreatesBeneath"/>.</summary>
    private protected virtual SafeFileHandle OpenForCreate(SafeFileHandle dir, string name, int flags, int mode) =>
        throw new PlatformNotSupportedException();

    /// <summary>Makes a symlink beneath its root. False when not confined.</summary>
    protected override bool TryCreateSymlinkBeneath(string target, string path)
    {
        using var p = OpenBeneath(path);
        if (!p.Confined) return false;
        if (Libc.symlinkat(target, p.Dir, p.Name) != 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "copy symlink", path);
        return true;
    }
}
