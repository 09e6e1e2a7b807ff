using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system, with another process acting once, just before the first call of one kind on a path the
/// predicate picks ("read" is a walk reading a directory): replacing a directory by a symlink to an outside folder, or deleting something. Makes the races
/// of a mod tool or a running game with Patcher's steps deterministic.
/// </summary>
internal sealed class SwappingFileOps(IFileOps inner, string call, Func<string, bool> at, Action act) : FileOpsDecorator(inner)
{
    private int _fired;

    /// <summary>The path of the call before which <c>act</c> ran, or null.</summary>
    public string? FiredAt { get; private set; }

    private void Before(string kind, string path)
    {
        if (kind != call || !at(path) || Interlocked.Exchange(ref _fired, 1) == 1) return;
        FiredAt = path;
        act();
    }

    /// <summary>Moves <paramref name="directory"/> away to <paramref name="movedTo"/> and puts a symlink to <paramref name="outside"/> in its place.</summary>
    public static void ReplaceBySymlink(string directory, string movedTo, string outside)
    {
        Directory.Move(directory, movedTo);
        Directory.CreateSymbolicLink(directory, outside);
    }

    public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked)
    {
        Before("read", relative.Length == 0 ? root : RelativePath.Join(root, relative));
        return base.ReadDirectory(root, relative, walked);
    }

    public override void Rename(string from, string to)
    {
        Before("rename", to);
        base.Rename(from, to);
    }

    public override bool TryHardLink(string existing, string newPath)
    {
        Before("link", existing);
        return base.TryHardLink(existing, newPath);
    }

    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath)
    {
        Before("link", RelativePath.Join(tree.Root, relative));
        return base.TryLinkWalkedFile(tree, relative, walked, newPath);
    }

    public override void DeleteFile(string path)
    {
        Before("delete", path);
        base.DeleteFile(path);
    }

    public override Stream Create(string path)
    {
        Before("create", path);
        return base.Create(path);
    }
}
