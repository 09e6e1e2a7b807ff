using System.Globalization;
using Microsoft.Extensions.Logging;
using Patching.Deltas;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;

namespace Patching.Staging;

/// <summary>
/// Resumable rebuilding of large contents. A content is rebuilt into its own file in the partial directory; once at least
/// <see cref="RecordBytes"/> were written since the last record, at the end of an operation, the file is fsynced and the
/// journal records how many operations wrote how many bytes and the XxHash128 of those bytes (<see cref="ContentProgress"/>).
/// An apply of the same patch after a crash reads the prefix back, compares its XxHash128 with the record, and continues
/// after it: the operations that wrote it are not run again. The prefix is hashed with SHA-256 while it is read back, so
/// the whole content is still checked against its signed SHA-256 before it is used; a prefix that no longer matches its
/// record (changed on disk, or lost by a power cut) is not trusted, and the content is rebuilt from its start.
/// </summary>
/// <remarks>
/// The fsync comes before the record (the journal never describes bytes a power cut could lose); what lies after the
/// recorded length (written after the last record) is cut off. Contents smaller than <see cref="RecordBytes"/> are
/// never recorded: a record costs an fsync and a journal commit, more than rebuilding them.
/// </remarks>
internal sealed class ContentCheckpoints(IFileOps fs, JournalStore journal, ILogger log, string manifestHash, string partialDir, long recordBytes)
{
    /// <summary>
    /// Bytes between two records by default: a crash costs at most this much rebuilding again (plus one operation), and a
    /// record (an fsync and a journal commit, a few milliseconds) costs under 1% of rebuilding that much (docs/decisions.md).
    /// </summary>
    public const long DefaultRecordBytes = 64L << 20;

    private readonly Lock _journalGate = new();
    private Dictionary<string, ContentProgress> _records = [];
    private long _resumedBytes;
    private int _resumed;

    /// <summary>
    /// The interval an engine uses. Only a process that opted in to the crash-test hooks (<see cref="CrashInjection.OptInSwitch"/>)
    /// may lower it with <c>PATCHER_TEST_RESUME_RECORD_BYTES</c>, so that a small test patch has records inside a file.
    /// </summary>
    public static long ConfiguredRecordBytes { get; } =
        AppContext.TryGetSwitch(CrashInjection.OptInSwitch, out var on) && on &&
        long.TryParse(Environment.GetEnvironmentVariable("PATCHER_TEST_RESUME_RECORD_BYTES"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : DefaultRecordBytes;

    public long RecordBytes => recordBytes;

    /// <summary>Bytes of contents kept from an earlier attempt, and how many contents were continued.</summary>
    public (long Bytes, int Contents) Resumed => (Interlocked.Read(ref _resumedBytes), Volatile.Read(ref _resumed));

    public string PathOf(string sha256) => Path.Join(partialDir, sha256);

    /// <summary>
    /// Reads this patch's records (the journal drops any other patch's) and makes the partial directory hold only files
    /// that a record may describe.
    /// </summary>
    public void Open()
    {
        _records = journal.ProgressOf(manifestHash);
        if (fs.Stat(partialDir).Kind == EntryKind.Missing)
        {
            fs.CreateDirectory(partialDir);
            return;
        }

        foreach (var name in fs.ListNames(partialDir).ToList())
        {
            if (!_records.ContainsKey(name)) TreeOps.DeleteTree(fs, Path.Join(partialDir, name));
        }
    }

    /// <summary>
    /// The output for <paramref name="recipe"/> and what it already holds: its partial file continued after the recorded
    /// prefix when that prefix still hashes to its record, else a new, empty file.
    /// </summary>
    public (Stream Output, ContentPrefix Prefix) OpenOutput(ContentRecipe recipe, bool mayResume, CancellationToken ct)
    {
        var path = PathOf(recipe.Sha256);
        var prefix = new ContentPrefix();
        try
        {
            if (mayResume && _records.TryGetValue(recipe.Sha256, out var record))
            {
                if (ReadPrefix(recipe, record, path, prefix, ct))
                {
                    Interlocked.Add(ref _resumedBytes, record.Length);
                    Interlocked.Increment(ref _resumed);
                    log.LogInformation(PatcherLogEvents.ContentResumed, "Continuing content {Content} after {Bytes} of {Size} bytes ({Ops} of {Total} operations) rebuilt by an earlier attempt",
                        recipe.Sha256, record.Length, recipe.Size, record.Ops, recipe.Ops.Count);
                    return (fs.OpenToContinue(path, record.Length), prefix);
                }

                prefix.Dispose();
                prefix = new ContentPrefix();
            }

            return (fs.Create(path), prefix);
        }
        catch
        {
            prefix.Dispose();
            throw;
        }
    }

    /// <summary>After an operation: fsyncs and records the prefix once <see cref="RecordBytes"/> were written since the last record.</summary>
    public void AfterOperation(ContentRecipe recipe, Stream output, ContentPrefix prefix, ref long recorded)
    {
        if (prefix.Length - recorded < recordBytes) return;
        fs.Sync(output);
        Record(recipe, prefix);
        recorded = prefix.Length;
    }

    /// <summary>A complete content (already fsynced, with its mode) is recorded too, so a crash before it is staged does not rebuild it.</summary>
    public void Completed(ContentRecipe recipe, ContentPrefix prefix, bool wasComplete)
    {
        if (recipe.Size >= recordBytes && !wasComplete) Record(recipe, prefix);
    }

    private void Record(ContentRecipe recipe, ContentPrefix prefix)
    {
        var progress = new ContentProgress(recipe.Sha256, manifestHash, prefix.Ops, prefix.Length, prefix.XxHash128);
        lock (_journalGate) journal.RecordProgress(progress);
    }

    /// <summary>
    /// Reads the recorded prefix of <paramref name="path"/> into <paramref name="prefix"/>; true when it is whole and hashes
    /// to the record. The operations' lengths must add up to the recorded length, or the record is not this recipe's.
    /// </summary>
    private bool ReadPrefix(ContentRecipe recipe, ContentProgress record, string path, ContentPrefix prefix, CancellationToken ct)
    {
        if (record.Ops < 1 || record.Ops > recipe.Ops.Count || recipe.Ops.Take(record.Ops).Sum(o => o.Length) != record.Length) return false;
        var seen = fs.Stat(path);
        if (seen.Kind != EntryKind.File || seen.Size < record.Length)
        {
            log.LogInformation("The partial content {Content} is missing or shorter than its record; rebuilding it from its start", recipe.Sha256);
            return false;
        }

        using (var input = fs.OpenRead(path))
        {
            var buffer = new byte[ContentHash.BufferSize];
            for (var left = record.Length; left > 0;)
            {
                ct.ThrowIfCancellationRequested();
                var n = input.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n == 0) return false;
                prefix.Append(buffer.AsSpan(0, n));
                left -= n;
            }
        }

        if (!prefix.XxHash128.AsSpan().SequenceEqual(record.PrefixXxHash128))
        {
            log.LogWarning("The first {Bytes} bytes of the partial content {Content} changed since they were recorded; rebuilding it from its start", record.Length, recipe.Sha256);
            return false;
        }

        prefix.Completed(record.Ops);
        return true;
    }
}
