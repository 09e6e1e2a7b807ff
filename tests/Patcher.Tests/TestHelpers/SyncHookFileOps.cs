using System.Runtime.CompilerServices;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system, running a callback right after the <c>k</c>-th fsync of a file created or continued under one
/// directory returned: a launcher pausing (cancelling) or the disk filling up just after a rebuilt content's progress
/// record was made durable.
/// </summary>
internal sealed class SyncHookFileOps(IFileOps inner, string directory, int k, Action then) : FileOpsDecorator(inner)
{
    private readonly ConditionalWeakTable<Stream, object> _watched = [];
    private int _syncs;

    public int Syncs => Volatile.Read(ref _syncs);

    public override Stream Create(string path) => Watch(path, base.Create(path));

    public override Stream OpenToContinue(string path, long length) => Watch(path, base.OpenToContinue(path, length));

    public override void Sync(Stream stream)
    {
        base.Sync(stream);
        if (_watched.TryGetValue(stream, out _) && Interlocked.Increment(ref _syncs) == k) then();
    }

    private Stream Watch(string path, Stream stream)
    {
        if (Path.GetDirectoryName(path) == directory) _watched.AddOrUpdate(stream, new object());
        return stream;
    }
}
