using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// Linking a file of the install into the new tree only when it is exactly the walked one. The plan decided from the
/// walk that the file's content is the base's (by size, or by hash read through its path); a process of the player
/// could since have swapped a directory on the way for a symlink or for another directory holding a file of the same
/// name and size. So the path is opened from the root one directory at a time without following symlinks, each
/// directory's identity compared with the walk's, the file opened without following or blocking and its identity
/// compared too, and the new link compared with that open file afterwards.
/// </summary>
/// <remarks>
/// The directories are held open for the whole step, so a swap after a check cannot redirect it. What no check here can
/// see is a change of the walked file's bytes in place: that is the player changing their own install, and the
/// commit's verification of the new tree is what reports it.
/// </remarks>
internal sealed partial class LinuxFileOps
{
    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath)
    {
        var path = RelativePath.Join(tree.Root, relative);
        using var parent = OpenWalkedParent(tree, relative, path);
        var name = Path.GetFileName(path);
        using var file = Libc.openat(parent, name, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (file.IsInvalid)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == NativeErrors.ELOOP) throw Escape(path, path);
            throw NativeErrors.FromErrno(errno, "open for linking", path);
        }

        if (!LinuxFiles.TryStat(file, out var opened)) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "stat", path);
        if ((opened.Mode & Libc.S_IFMT) != Libc.S_IFREG || (walked.Inode != 0 && (opened.Device, opened.Inode) != (walked.Device, walked.Inode)))
            throw WalkedTree.Replaced(relative, "not the file the walk found", Linked);

        using var target = OpenBeneath(newPath);
        if (KeepErrno(() => Libc.linkat(parent, name, target.Dir, target.At, 0), out var linkErrno) != 0)
        {
            if (NativeErrors.HardLinkImpossible(linkErrno)) return false;
            throw NativeErrors.FromErrno(linkErrno, $"hard link to '{newPath}'", path);
        }

        // The name could have been swapped between the open and the link: the link must name the open file.
        if (!LinuxFiles.TryStatAt(target.Dir, target.At, out var linked) || (linked.Device, linked.Inode) != (opened.Device, opened.Inode))
        {
            _ = Libc.unlinkat(target.Dir, target.At, 0);
            throw WalkedTree.Replaced(relative, "swapped while it was being linked", Linked);
        }

        return true;
    }

    /// <summary>
    /// The directory holding <paramref name="relative"/>'s file, opened from the root one component at a time without
    /// following symlinks, each checked against the walk's identity of it.
    /// </summary>
    private SafeFileHandle OpenWalkedParent(WalkedTree tree, string relative, string path) =>
        OpenWalked(tree.Root, DirectoryFlags, RelativePath.Parent(relative), tree.Directory, path, Linked);

    private const string Linked = "nothing was linked from it";

    /// <summary>
    /// Opens <paramref name="directory"/> (relative) below <paramref name="root"/>: the root with
    /// <paramref name="rootFlags"/>, then each component with <c>O_NOFOLLOW|O_DIRECTORY</c> relative to the one before,
    /// each compared with <paramref name="walked"/>'s identity of it where known. A symlink on the way is
    /// <see cref="PatchErrorCode.SymlinkEscape"/>; another directory, or no directory any more,
    /// <see cref="PatchErrorCode.InstallEntryReplaced"/> (<paramref name="outcome"/> says what the refusal spared).
    /// </summary>
    private SafeFileHandle OpenWalked(string root, int rootFlags, string directory, Func<string, (ulong Device, ulong Inode)?> walked, string path, string outcome)
    {
        var dir = Libc.open(root, rootFlags);
        var at = "";
        try
        {
            if (dir.IsInvalid) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "open directory", root);
            CheckWalked(walked, root, dir, at, outcome);
            foreach (var component in directory.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                at = at.Length == 0 ? component : at + "/" + component;
                var next = Libc.openat(dir, component, DirectoryFlags);
                var errno = Marshal.GetLastPInvokeError();
                dir.Dispose();
                dir = next;
                if (dir.IsInvalid)
                {
                    var full = RelativePath.Join(root, at);
                    if (IsSymlinkRefusal(errno, full)) throw Escape(full, path);
                    throw errno == NativeErrors.ENOTDIR ? WalkedTree.Replaced(at, "no longer a directory", outcome) : NativeErrors.FromErrno(errno, "open directory", full);
                }

                CheckWalked(walked, root, dir, at, outcome);
            }

            return dir;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private protected override void CheckWalkedDirectory(WalkedTree tree, SafeFileHandle dir, string relative)
    {
        try
        {
            CheckWalked(tree.Directory, tree.Root, dir, relative, "nothing was changed in it");
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private static void CheckWalked(Func<string, (ulong Device, ulong Inode)?> walked, string root, SafeFileHandle dir, string relative, string outcome)
    {
        if (walked(relative) is not { } identity) return;
        if (!LinuxFiles.TryStat(dir, out var s) || (s.Device, s.Inode) != identity)
            throw WalkedTree.Replaced(relative.Length == 0 ? root : relative, "another directory than the walk found", outcome);
    }

    /// <summary>
    /// Reads the directory through a descriptor opened from the root without following symlinks (the root itself as
    /// named: the folders above it are the caller's choice), and stats each entry relative to that descriptor, so
    /// neither the listing nor the stats can pass through a directory swapped for a symlink since its parent was read.
    /// </summary>
    public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked)
    {
        var path = relative.Length == 0 ? root : RelativePath.Join(root, relative);
        using var dir = OpenWalked(root, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, relative, walked, path, "the walk stopped there");
        var names = ReadNames(dir, path);
        var entries = new List<(string Name, EntryInfo Info)>(names.Count);
        foreach (var name in names)
        {
            if (LinuxFiles.TryStatAt(dir, name, out var s))
            {
                entries.Add((name, LinuxFiles.ToEntry(s)));
                continue;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != NativeErrors.ENOENT) throw NativeErrors.FromErrno(errno, "stat", RelativePath.Join(path, name));
            entries.Add((name, default)); // removed since the listing, as a stat by path reports it
        }

        return entries;
    }

    /// <summary>The names in an open directory (without "." and ".."), read by readdir over a duplicate of its descriptor.</summary>
    private static List<string> ReadNames(SafeFileHandle dir, string path)
    {
        var fd = Libc.fcntl(dir, Libc.F_DUPFD_CLOEXEC_LINUX, 0);
        if (fd < 0) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "list directory", path);
        var stream = Libc.fdopendir(fd);
        if (stream == 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            new SafeFileHandle(fd, ownsHandle: true).Dispose();

            throw NativeErrors.FromErrno(errno, "list directory", path);
        }

        try
        {
            var names = new List<string>();
            while (true)
            {
                var entry = Libc.readdir(stream);
                if (entry == 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != 0) throw NativeErrors.FromErrno(errno, "list directory", path);
                    return names;
                }

                var name = Marshal.PtrToStringUTF8(entry + Libc.DIRENT_NAME_OFFSET_LINUX)!;
                if (name is not ("." or "..")) names.Add(name);
            }
        }
        finally
        {
            _ = Libc.closedir(stream);
        }
    }
}
