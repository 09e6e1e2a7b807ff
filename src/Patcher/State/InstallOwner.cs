using Patching.IO;
using Patching.Manifests;

namespace Patching.State;

/// <summary>
/// An updater run as root (a service, sudo) for an install another user owns must not hand the player a tree of
/// root-owned directories and files: the game could no longer save, and the player's next update would fail. So what
/// staging made for the new version gets the owner and group of the install directory; entries linked from the old
/// version keep theirs. Nothing to do for any other user (its new entries are its own) or where owners cannot be read.
/// </summary>
internal static class InstallOwner
{
    /// <summary>Gives every entry of <paramref name="tree"/> owned by root the install directory's owner and group.</summary>
    public static void Apply(IFileOps fs, string installDir, string tree)
    {
        if (Of(fs, installDir) is not { } owner) return;
        Give(fs, tree, owner);
        foreach (var e in TreeOps.Walk(fs, tree)) Give(fs, PathRules.Join(tree, e.Path), owner);
    }

    /// <summary>Gives one entry this process just made in the install (a directory of the layered commit) the install's owner.</summary>
    public static void ApplyOne(IFileOps fs, string installDir, string path)
    {
        if (Of(fs, installDir) is { } owner) Give(fs, path, owner);
    }

    /// <summary>The install's owner when this process is root and the install belongs to another user; else null.</summary>
    private static EntryOwner? Of(IFileOps fs, string installDir) =>
        fs.EffectiveUser is 0 && fs.Owner(installDir) is { Uid: not 0 } owner ? owner : null;

    private static void Give(IFileOps fs, string path, EntryOwner owner)
    {
        if (fs.Owner(path) is { Uid: 0 }) fs.SetOwner(path, owner.Uid, owner.Gid);
    }
}
