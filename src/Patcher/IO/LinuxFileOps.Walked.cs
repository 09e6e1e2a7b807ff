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
            throw WalkedTree.Replaced(relative, "not the file the walk found");

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
            throw WalkedTree.Replaced(relative, "swapped while it was being linked");
        }

        return true;
    }

    /// <summary>
    /// The directory holding <paramref name="relative"/>'s file, opened from the root one component at a time without
    /// following symlinks, each checked against the walk's identity of it.
    /// </summary>
    private SafeFileHandle OpenWalkedParent(WalkedTree tree, string relative, string path)
    {
        var dir = Libc.open(tree.Root, DirectoryFlags);
        var at = "";
        try
        {
            if (dir.IsInvalid) throw NativeErrors.FromErrno(Marshal.GetLastPInvokeError(), "open directory", tree.Root);
            CheckWalked(tree, dir, at);
            foreach (var component in RelativePath.Parent(relative).Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                at = at.Length == 0 ? component : at + "/" + component;
                var next = Libc.openat(dir, component, DirectoryFlags);
                var errno = Marshal.GetLastPInvokeError();
                dir.Dispose();
                dir = next;
                if (dir.IsInvalid)
                {
                    var full = RelativePath.Join(tree.Root, at);
                    if (IsSymlinkRefusal(errno, full)) throw Escape(full, path);
                    throw errno == NativeErrors.ENOTDIR ? WalkedTree.Replaced(at, "no longer a directory") : NativeErrors.FromErrno(errno, "open directory", full);
                }

                CheckWalked(tree, dir, at);
            }

            return dir;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private static void CheckWalked(WalkedTree tree, SafeFileHandle dir, string relative)
    {
        if (tree.Directory(relative) is not { } walked) return;
        if (!LinuxFiles.TryStat(dir, out var s) || (s.Device, s.Inode) != walked)
            throw WalkedTree.Replaced(relative.Length == 0 ? tree.Root : relative, "another directory than the walk found");
    }
}
