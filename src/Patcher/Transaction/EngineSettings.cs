using Patching.IO;
using Patching.State;

namespace Patching.Transaction;

/// <summary>
/// What the engine runs against: the file-operations seam, and (for the power-loss simulation only) a real
/// directory for the SQLite journal and lock when the trees live in a simulated file system.
/// </summary>
internal sealed record EngineSettings(IFileOps FileSystem, string? JournalDirectory = null)
{
    /// <summary>Bytes rebuilt between two progress records of a large content (<see cref="Staging.ContentCheckpoints"/>).</summary>
    public long ProgressRecordBytes { get; init; } = Staging.ContentCheckpoints.ConfiguredRecordBytes;

    public StateLayout Layout(string installDir, PatcherOptions options) => new(installDir, options.StateDirectory, JournalDirectory);
}
