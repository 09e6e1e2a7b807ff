using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system as one that numbers no files or directories (as the file operations report it on Windows and
/// macOS): every stat has device and inode 0.
/// </summary>
internal sealed class NoInodeFileOps() : FileOpsDecorator(FileOps.Instance)
{
    public override EntryInfo Stat(string path) => base.Stat(path) with { Device = 0, Inode = 0 };

    public override IReadOnlyList<(string Name, EntryInfo Info)> ReadDirectory(string root, string relative, Func<string, (ulong Device, ulong Inode)?> walked) =>
        base.ReadDirectory(root, relative, walked).Select(e => (e.Name, e.Info with { Device = 0, Inode = 0 })).ToList();
}
