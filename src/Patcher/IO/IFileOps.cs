using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>Kind of a directory entry, never following symlinks.</summary>
internal enum EntryKind
{
    Missing,
    File,
    Directory,
    Symlink,
    Other,
}

/// <summary>What <see cref="IFileOps.Stat"/> reports about one path (lstat semantics).</summary>
internal readonly record struct EntryInfo(EntryKind Kind, long Size, bool Executable, ulong Device, ulong Inode);

/// <summary>Who owns an entry and its permission bits (lstat semantics): <c>Mode</c> holds st_mode's low 12 bits.</summary>
internal readonly record struct EntryOwner(uint Uid, uint Mode, uint Gid = 0)
{
    /// <summary>Group or others may write it (an ACL granting write to anyone else shows as the group write bit).</summary>
    public bool WritableByOthers => (Mode & (Interop.Libc.S_IWGRP | Interop.Libc.S_IWOTH)) != 0;
}

/// <summary>
/// The narrow seam through which the transaction engine touches the file system. Every mutating call is
/// one observable step: the crash harness counts them, the power-loss simulator models their durability.
/// Implementations throw <see cref="PatcherException"/> with a mapped code on failure.
/// </summary>
internal interface IFileOps
{
    EntryInfo Stat(string path);

    IEnumerable<string> ListNames(string directory);

    /// <summary>
    /// One directory of a walk: the entries of the directory at <paramref name="relative"/> below <paramref name="root"/>
    /// ("" for the root itself), in no particular order, each stat-ed without following a symlink (an entry removed since
    /// the listing is reported <see cref="EntryKind.Missing"/>). Implementations with directory handles open the directory
    /// from the root one component at a time without following a symlink, and compare each directory they pass with
    /// <paramref name="walked"/> (the identity the walk recorded for a relative path, null when unknown), so a directory
    /// swapped for a symlink during the walk is refused (<see cref="PatchErrorCode.SymlinkEscape"/>) and one swapped for
    /// another directory too (<see cref="PatchErrorCode.InstallEntryReplaced"/>): the walk never lists anything outside the
    /// root. By default the directory is listed and its entries stat-ed by path.
    /// </summary>
    IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
        TreeOps.ReadDirectoryByPath(this, root, relative);

    Stream OpenRead(string path);

    /// <summary>Creates a new file (truncating any old one) for writing.</summary>
    Stream Create(string path);

    /// <summary>
    /// Opens an existing file for writing after its first <paramref name="length"/> bytes, cutting off the rest: a
    /// partly written file is continued where a verified prefix ends.
    /// </summary>
    Stream OpenToContinue(string path, long length);

    /// <summary>Makes the data written through <paramref name="stream"/> durable. Failure is fatal: never retry.</summary>
    void Sync(Stream stream);

    /// <summary>Makes the directory's entries (creates, renames, unlinks) durable.</summary>
    void SyncDirectory(string path);

    void CreateDirectory(string path);

    /// <summary>Renames a file or directory, replacing an existing file at the destination.</summary>
    void Rename(string from, string to);

    /// <summary>Atomically exchanges two directories. Returns false where the file system cannot.</summary>
    bool TryExchange(string a, string b);

    /// <summary>Creates a hard link. Returns false where links are impossible (other volume, FAT, policy).</summary>
    bool TryHardLink(string existing, string newPath);

    /// <summary>
    /// Hard-links the file open as <paramref name="file"/> (opened at <paramref name="path"/>) at
    /// <paramref name="newPath"/>, gives it the mode a new file gets (with the executable bits or without), and makes its
    /// data and mode durable.
    /// Returns false, leaving nothing at <paramref name="newPath"/>, where links are impossible or
    /// <paramref name="path"/> no longer names the open file; the caller copies instead. Not supported by default.
    /// </summary>
    bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable) => false;

    /// <summary>
    /// Hard-links the file at <paramref name="relative"/> below <paramref name="tree"/>'s root at <paramref name="newPath"/>,
    /// provided it is exactly what the walk found: every directory on the way, opened without following symlinks, is the
    /// walked one, and the file is the walked inode (<paramref name="walked"/>). Throws
    /// <see cref="PatchErrorCode.InstallEntryReplaced"/> when one was replaced since (a directory swapped for another, a
    /// file swapped for one of the same size) and <see cref="PatchErrorCode.SymlinkEscape"/> for a symlink on the way,
    /// leaving nothing at <paramref name="newPath"/>. Returns false where links are impossible (the caller copies and
    /// verifies the content). By default a plain <see cref="TryHardLink"/>: implementations without identities can check
    /// nothing more.
    /// </summary>
    bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath) =>
        TryHardLink(RelativePath.Join(tree.Root, relative), newPath);

    /// <summary>
    /// Layer 0 of the layered replace: flushes <paramref name="from"/> and renames it over <paramref name="to"/> with POSIX
    /// semantics, so a target held open with delete sharing is replaced (Windows 10 1607+ volumes that support it).
    /// Returns false where the system or volume cannot (the caller falls back to a plain rename); throws a mapped
    /// <see cref="PatcherException"/> when it could but failed. Not offered by default.
    /// </summary>
    bool TryPosixRename(string from, string to) => false;

    /// <summary>
    /// Whether this seam's errors carry Win32 numbers (<see cref="PatcherException.NativeError"/>), so that access denied
    /// may be a transient lock (antivirus, a delete pending, a running image) worth retrying.
    /// </summary>
    bool ReportsWin32Errors => false;

    /// <summary>
    /// A hint before many <see cref="Sync"/> calls: writes back everything dirty on the file system holding
    /// <paramref name="path"/> in one pass, so that the per-file syncs that follow find little left to do. It never
    /// replaces them: they remain the durability point, and they report a failed write-back of their file. Returns
    /// false where it did nothing (not supported, or failed: the caller goes on). Nothing by default.
    /// </summary>
    bool FlushFileSystem(string path) => false;

    void DeleteFile(string path);

    /// <summary>Removes an empty directory.</summary>
    void DeleteDirectory(string path);

    void SetExecutable(string path, bool executable);

    /// <summary>Copies a symlink itself (not its target).</summary>
    void CopySymlink(string from, string to);

    long AvailableFreeSpace(string path);

    /// <summary>
    /// True when <paramref name="directory"/> is the root of a mount (including a bind mount, which shares its
    /// parent's device number): a directory that cannot be renamed, so the swap cannot be used.
    /// </summary>
    bool IsMountPoint(string directory) => false;

    /// <summary>Last write time of a file, or null where the implementation does not track it.</summary>
    DateTime? LastWriteUtc(string path) => null;

    /// <summary>Sets a file's last write time where the implementation tracks it.</summary>
    void SetLastWriteUtc(string path, DateTime value)
    {
    }

    /// <summary>
    /// Owner and permission bits of <paramref name="path"/>, not following a final symlink; null where it is missing or
    /// the implementation cannot tell (Windows, macOS, simulated file systems): the caller then skips ownership checks.
    /// </summary>
    EntryOwner? Owner(string path) => null;

    /// <summary>The effective user id of this process, or null where owners are not checked.</summary>
    uint? EffectiveUser => null;

    /// <summary>Gives <paramref name="path"/> (a symlink itself, not its target) an owner and group (Linux); no-op elsewhere.</summary>
    void SetOwner(string path, uint uid, uint gid)
    {
    }

    /// <summary>Gives a directory's owner write and search permission on it (Unix); no-op where there are none.</summary>
    void AllowOwnerWrite(string directory)
    {
    }

    /// <summary>Takes the group and other write bits off <paramref name="path"/> (Unix); no-op where there are none.</summary>
    void RemoveWriteByOthers(string path)
    {
    }

    /// <summary>Gives <paramref name="to"/> the permission bits of <paramref name="from"/> (Unix); no-op where there are none.</summary>
    void CopyMode(string from, string to)
    {
    }
}
