using Microsoft.Win32.SafeHandles;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system below <c>root</c> as an exFAT or FAT volume shows it: a name finds an entry under any spelling
/// of its case (so a rename or a new file onto another spelling reaches the existing entry), and no hard links. Paths
/// outside <c>root</c> pass through unchanged.
/// </summary>
internal sealed class CaseInsensitiveFileOps(IFileOps inner, string root) : FileOpsDecorator(inner)
{
    /// <summary>The existing spelling of every component of <paramref name="path"/> below the root, as far as one exists.</summary>
    private string Resolve(string path)
    {
        if (!path.StartsWith(root + "/", StringComparison.Ordinal)) return path;
        var resolved = root;
        foreach (var component in path[(root.Length + 1)..].Split('/'))
        {
            var exact = Path.Join(resolved, component);
            if (Inner.Stat(exact).Kind != EntryKind.Missing || Inner.Stat(resolved).Kind != EntryKind.Directory)
            {
                resolved = exact;
                continue;
            }

            var spelt = Inner.ListNames(resolved).FirstOrDefault(n => string.Equals(n, component, StringComparison.OrdinalIgnoreCase));
            resolved = Path.Join(resolved, spelt ?? component);
        }

        return resolved;
    }

    public override EntryInfo Stat(string path) => Inner.Stat(Resolve(path));
    public override IEnumerable<string> ListNames(string directory) => Inner.ListNames(Resolve(directory));

    public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
        TreeOps.ReadDirectoryByPath(this, root, relative);

    public override Stream OpenRead(string path) => Inner.OpenRead(Resolve(path));
    public override Stream Create(string path) => Inner.Create(Resolve(path));
    public override void SyncDirectory(string path) => Inner.SyncDirectory(Resolve(path));
    public override void CreateDirectory(string path) => Inner.CreateDirectory(Resolve(path));
    public override void Rename(string from, string to) => Inner.Rename(Resolve(from), Resolve(to));
    public override bool TryExchange(string a, string b) => Inner.TryExchange(Resolve(a), Resolve(b));
    public override bool TryHardLink(string existing, string newPath) => false;
    public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable) => false;
    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath) => false;
    public override void DeleteFile(string path) => Inner.DeleteFile(Resolve(path));
    public override void DeleteDirectory(string path) => Inner.DeleteDirectory(Resolve(path));
    public override void SetExecutable(string path, bool executable) => Inner.SetExecutable(Resolve(path), executable);
    public override void CopySymlink(string from, string to) => Inner.CopySymlink(Resolve(from), Resolve(to));
    public override bool IsMountPoint(string directory) => Inner.IsMountPoint(Resolve(directory));
    public override EntryOwner? Owner(string path) => Inner.Owner(Resolve(path));
    public override void RemoveWriteByOthers(string path) => Inner.RemoveWriteByOthers(Resolve(path));
    public override void AllowOwnerWrite(string directory) => Inner.AllowOwnerWrite(Resolve(directory));
    public override void SetOwner(string path, uint uid, uint gid) => Inner.SetOwner(Resolve(path), uid, gid);
    public override void CopyMode(string from, string to) => Inner.CopyMode(Resolve(from), Resolve(to));
    public override DateTime? LastWriteUtc(string path) => Inner.LastWriteUtc(Resolve(path));
    public override void SetLastWriteUtc(string path, DateTime value) => Inner.SetLastWriteUtc(Resolve(path), value);
}
