using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>
/// Forwards every call of the file-operations seam to another implementation. Decorators (crash injection, and
/// the tests' fault, lock and hook decorators) override only the calls they change, so a member added to the
/// seam reaches the real file system through all of them instead of falling back to a default.
/// </summary>
internal abstract class FileOpsDecorator(IFileOps inner) : IFileOps
{
    protected IFileOps Inner { get; } = inner;

    public virtual EntryInfo Stat(string path) => Inner.Stat(path);
    public virtual IEnumerable<string> ListNames(string directory) => Inner.ListNames(directory);

    public virtual IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
        Inner.ReadDirectory(root, relative, walked);
    public virtual Stream OpenRead(string path) => Inner.OpenRead(path);
    public virtual Stream Create(string path) => Inner.Create(path);
    public virtual Stream OpenToContinue(string path, long length) => Inner.OpenToContinue(path, length);
    public virtual void Sync(Stream stream) => Inner.Sync(stream);
    public virtual void SyncDirectory(string path) => Inner.SyncDirectory(path);
    public virtual void CreateDirectory(string path) => Inner.CreateDirectory(path);
    public virtual void Rename(string from, string to) => Inner.Rename(from, to);
    public virtual bool TryExchange(string a, string b) => Inner.TryExchange(a, b);
    public virtual bool TryHardLink(string existing, string newPath) => Inner.TryHardLink(existing, newPath);
    public virtual bool ReportsWin32Errors => Inner.ReportsWin32Errors;

    /// <summary>
    /// Declined unless a decorator overrides it: layer 0 flushes and renames in one call that a decorator cannot split
    /// into the steps it counts or fails, so through a decorator the layered commit starts at the plain rename.
    /// </summary>
    public virtual bool TryPosixRename(string from, string to) => false;

    public virtual bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable) => Inner.TryLinkOpenFile(file, path, newPath, executable);
    public virtual bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath) => Inner.TryLinkWalkedFile(tree, relative, walked, newPath);
    public virtual void DeleteFile(string path) => Inner.DeleteFile(path);
    public virtual void DeleteDirectory(string path) => Inner.DeleteDirectory(path);
    public virtual void SetExecutable(string path, bool executable) => Inner.SetExecutable(path, executable);
    public virtual void CopySymlink(string from, string to) => Inner.CopySymlink(from, to);
    public virtual long AvailableFreeSpace(string path) => Inner.AvailableFreeSpace(path);
    public virtual bool IsMountPoint(string directory) => Inner.IsMountPoint(directory);
    public virtual bool FlushFileSystem(string path) => Inner.FlushFileSystem(path);
    public virtual EntryOwner? Owner(string path) => Inner.Owner(path);
    public virtual uint? EffectiveUser => Inner.EffectiveUser;
    public virtual void RemoveWriteByOthers(string path) => Inner.RemoveWriteByOthers(path);
    public virtual void AllowOwnerWrite(string directory) => Inner.AllowOwnerWrite(directory);
    public virtual void SetOwner(string path, uint uid, uint gid) => Inner.SetOwner(path, uid, gid);
    public virtual void CopyMode(string from, string to) => Inner.CopyMode(from, to);
    public virtual DateTime? LastWriteUtc(string path) => Inner.LastWriteUtc(path);
    public virtual void SetLastWriteUtc(string path, DateTime value) => Inner.SetLastWriteUtc(path, value);
}
