using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>The real file system, running a callback once, right after the first hard link whose new name matches: a launcher pausing while staging.</summary>
internal sealed class HardLinkHookFileOps(IFileOps inner, Func<string, bool> matches, Action then) : FileOpsDecorator(inner)
{
    private int _fired;

    public bool Fired => Volatile.Read(ref _fired) != 0;

    public override bool TryHardLink(string existing, string newPath)
    {
        var linked = base.TryHardLink(existing, newPath);
        if (linked && matches(newPath) && Interlocked.Exchange(ref _fired, 1) == 0) then();
        return linked;
    }
}
