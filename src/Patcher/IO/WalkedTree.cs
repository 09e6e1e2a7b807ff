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

    /// <summary>
    /// Stops comparing the directory at <paramref name="relative"/> (and, with <paramref name="below"/>, every directory
    /// under it): a step of this update removed or moved it, so a directory made there later is rightly another one.
    /// </summary>
    public void Forget(string relative, bool below)
    {
        lock (_directories)
        {
            _directories.Remove(relative);
            if (!below) return;
            var prefix = relative + "/";
            foreach (var key in _directories.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) _directories.Remove(key);
        }
    }

    /// <summary>The walked identity of the directory at <paramref name="relative"/> ("" for the root), or null when unknown.</summary>
    public (ulong Device, ulong Inode)? Directory(string relative)
    {
        if (relative.Length == 0) return RootIdentity.Inode == 0 ? null : RootIdentity;
        lock (_directories) return _directories.TryGetValue(relative, out var id) ? id : null;
    }

    /// <summary>The refusal of a step that found another entry than the walk at <paramref name="path"/>.</summary>
    public static PatcherException Replaced(string path, string what, string outcome) =>
        new(PatchErrorCode.InstallEntryReplaced, $"'{path}' was replaced since the install was examined ({what}); {outcome}", path);
}

/// <summary>
/// The walk whose directories the file-system steps below its root must still find, while an update changes the install
/// in place (the layered commit's backups, moves aside, placements and their undo). Each step opens the directories on
/// its way from the root one at a time without following symlinks (<c>UnixFileOps.OpenBeneath</c>); with a scope open,
/// each of them is also compared with the walk's identity of it, so a real directory moved into the install since the walk
/// (holding look-alike files, or to receive the new ones) fails the step instead of being written into. Flows with the
/// execution context, so concurrent updates of other installs (and tests) do not see each other's scope.
/// </summary>
internal static class WalkedScope
{
    private static readonly AsyncLocal<WalkedTree?> Current = new();

    /// <summary>The walk in scope, or null.</summary>
    public static WalkedTree? Tree => Current.Value;

    /// <summary>Puts <paramref name="tree"/> in scope (nothing when null) until the result is disposed.</summary>
    public static Scope Enter(WalkedTree? tree)
    {
        var before = Current.Value;
        if (tree is not null) Current.Value = tree;
        return new Scope(before);
    }

    /// <summary>Ends a scope, restoring the one before.</summary>
    public readonly struct Scope(WalkedTree? before) : IDisposable
    {
        public void Dispose() => Current.Value = before;
    }
}
