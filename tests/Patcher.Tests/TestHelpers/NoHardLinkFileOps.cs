using Microsoft.Win32.SafeHandles;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>The real file system as a volume without hard links (FAT, exFAT, some network shares) shows it: every link is impossible.</summary>
internal sealed class NoHardLinkFileOps(IFileOps inner) : FileOpsDecorator(inner)
{
    public override bool TryHardLink(string existing, string newPath) => false;
    public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable) => false;
    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath) => false;
}
