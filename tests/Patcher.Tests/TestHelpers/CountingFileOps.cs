using System.Collections.Concurrent;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>Counts the files opened for reading, by full path: how often the engine goes back to the same bytes.</summary>
internal sealed class CountingFileOps(IFileOps inner) : FileOpsDecorator(inner)
{
    private readonly ConcurrentDictionary<string, int> _reads = new(StringComparer.Ordinal);

    public int Reads(string path) => _reads.GetValueOrDefault(path);

    public override Stream OpenRead(string path)
    {
        _reads.AddOrUpdate(path, 1, (_, n) => n + 1);
        return base.OpenRead(path);
    }
}
