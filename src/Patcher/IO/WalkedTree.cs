namespace Patching.IO;

/// <summary>
/// What a walk found of a tree's directories: the identity (device and inode) of the root and of every directory below
/// it, by relative path. A step that must reach exactly what was walked (a file reused from the install) compares each
/// directory it opens on the way with these, so a directory swapped for another one since the walk is refused instead
/// of followed. Identities of 0 (a file system or implementation that reports none) are not compared.
/// </summary>
internal sealed class WalkedTree
{
    private readonly Dictionary<string, (ulong Device, ulong Inode)> _directories = new(StringComparer.Ordinal);

    /// <summary>A tree with nothing recorded: only the reused file itself is compared.</summary>
    public WalkedTree(string root)
    {
        Root = root;
    }

    public string Root { get; }

    /// <summary>The root's identity when the walk was made, or (0, 0).</summary>
    public (ulong Device, ulong Inode) RootIdentity { get; private init; }

    /// <summary>Records the root (stat-ed now, right after the walk) and the walked directories.</summary>
    public static WalkedTree Of(IFileOps fs, string root, IEnumerable<TreeEntry> entries)
    {
        var info = fs.Stat(root);
        var tree = new WalkedTree(root) { RootIdentity = info.Kind == EntryKind.Directory ? (info.Device, info.Inode) : (0, 0) };
        foreach (var e in entries)
        {
            if (e.Info.Kind == EntryKind.Directory && e.Info.Inode != 0) tree._directories[e.Path] = (e.Info.Device, e.Info.Inode);
        }

        return tree;
    }

    /// <summary>The walked identity of the directory at <paramref name="relative"/> ("" for the root), or null when unknown.</summary>
    public (ulong Device, ulong Inode)? Directory(string relative)
    {
        if (relative.Length == 0) return RootIdentity.Inode == 0 ? null : RootIdentity;
        return _directories.TryGetValue(relative, out var id) ? id : null;
    }

    /// <summary>The refusal of a step that found another entry than the walk at <paramref name="path"/>.</summary>
    public static PatcherException Replaced(string path, string what) =>
        new(PatchErrorCode.InstallEntryReplaced, $"'{path}' was replaced since the install was examined ({what}); nothing was linked from it", path);
}
