using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Sources;

namespace Patching.Staging;

/// <summary>What one shadow tree is built from.</summary>
/// <param name="TxId">The transaction whose journal rows record the staged files.</param>
/// <param name="InstallDir">The install, source of reused files and of the user's entries.</param>
/// <param name="StagingDir">Where the tree is built.</param>
/// <param name="Plan">Which files to stage and from where.</param>
internal sealed record ShadowTreeRequest(string TxId, string InstallDir, string StagingDir, ApplyPlan Plan)
{
    /// <summary>Where content not reused from the install comes from; null when every file is reused.</summary>
    public PatchPackage? Package { get; init; }

    /// <summary>The received blobs, placed by link or copy instead of reading the package again.</summary>
    public ReceivedBlobs? Received { get; init; }

    /// <summary>Files an earlier attempt of this transaction staged and journaled (resumption).</summary>
    public IReadOnlyDictionary<string, FileRow> VerifiedRows { get; init; } = new Dictionary<string, FileRow>();

    /// <summary>
    /// Install files that stay where they are (the layered strategy keeps unchanged files in place): a file staged
    /// with the same content is copied from them, never linked, or the two paths would share an inode.
    /// </summary>
    public IEnumerable<string> KeepUnlinked { get; init; } = [];
}

/// <summary>Counts of one build.</summary>
/// <param name="Written">Files written (from the package or placed from received blobs).</param>
/// <param name="Reused">Files linked or copied from the install, or found staged by an earlier attempt.</param>
/// <param name="BytesWritten">Bytes this build wrote (received bytes are the receiver's).</param>
internal sealed record ShadowTree(int Written, int Reused, long BytesWritten);

/// <summary>
/// Builds the shadow tree: the complete new version plus the user's files, beside the install, on the same
/// volume. Unchanged files are hard-linked (copied where links are impossible), received content is linked, other
/// content is streamed from blobs, hashed while written and fsynced; every directory is fsynced at the end. Rows for
/// verified files are journaled after the files are durable, so a later Apply of the same patch can resume.
/// One instance builds one tree.
/// </summary>
internal sealed partial class ShadowTreeBuilder(IFileOps fs, JournalStore journal, ILogger log, ShadowTreeRequest request)
{
    private const int RowBatch = 256;
    private readonly Lock _journalGate = new();
    private readonly ConcurrentQueue<FileRow> _rows = new();

    /// <summary>Sources already hard-linked into the shadow tree: each may be linked once (see <see cref="TryPlaceReceived"/>).</summary>
    private readonly ConcurrentDictionary<string, byte> _linked = new(StringComparer.Ordinal);

    private readonly string _installDir = request.InstallDir;
    private readonly string _stagingDir = request.StagingDir;
    private int _done, _written, _reused;
    private long _bytesDone, _bytesWritten;

    public ShadowTree Build(IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        foreach (var p in request.KeepUnlinked) Claim("install:" + p);
        var plan = request.Plan;
        // A staging directory made just now holds nothing: no per-file probe for leftovers of an earlier attempt.
        var fresh = fs.Stat(_stagingDir).Kind == EntryKind.Missing;
        if (fresh)
        {
            fs.CreateDirectory(_stagingDir);
            fs.SyncDirectory(Path.GetDirectoryName(_stagingDir)!);
        }

        var dirs = CreateDirectories(fresh);
        _bytesDone = request.Received?.BytesWritten ?? 0; // what the receiver wrote is already done
        void Report(string item) => progress?.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref _done), plan.Files.Count, Interlocked.Read(ref _bytesDone), plan.BytesToWrite) { CurrentItem = item });

        // Large files first, so the workers finish together.
        var order = plan.Files.OrderByDescending(f => f.ReuseFrom is null ? f.File.Size : 0).ToList();
        StagingWorkers.ForEach(order, ct, src =>
        {
            StageFile(src, fresh, ct);
            Interlocked.Increment(ref _done);
            Report(src.File.Path);
        });
        FlushRows();
        LinkUserEntries(ct);
        FinishDirectories(dirs, ct);
        log.LogInformation("Staged {Total} files ({Written} written, {Reused} reused) in {Staging}", plan.Files.Count, _written, _reused, _stagingDir);
        return new ShadowTree(_written, _reused, Interlocked.Read(ref _bytesWritten));
    }

    /// <summary>Directories first, parents before children: the new version's, then the user's.</summary>
    private SortedSet<string> CreateDirectories(bool fresh)
    {
        var plan = request.Plan;
        var dirs = new SortedSet<string>(plan.StagesWholeTree ? plan.Manifest.Directories : plan.Files.SelectMany(f => PathRules.Ancestors(f.File.Path)), StringComparer.Ordinal);
        foreach (var e in plan.UserEntries)
        {
            if (e.Info.Kind == EntryKind.Directory) dirs.Add(e.Path);
            dirs.UnionWith(PathRules.Ancestors(e.Path));
        }

        foreach (var d in dirs)
        {
            var path = PathRules.Join(_stagingDir, d);
            if (fresh || fs.Stat(path).Kind != EntryKind.Directory) fs.CreateDirectory(path);
        }

        return dirs;
    }

    private void StageFile(FileSource src, bool fresh, CancellationToken ct)
    {
        var f = src.File;
        var staged = PathRules.Join(_stagingDir, f.Path);
        var existing = fresh ? default : fs.Stat(staged);
        if (StagedEarlier(existing, f, request.VerifiedRows))
        {
            // Resumed: this file was staged, verified and made durable by an earlier attempt.
            Interlocked.Increment(ref _reused);
            return;
        }

        if (existing.Kind != EntryKind.Missing) fs.DeleteFile(staged);
        if (src.ReuseFrom is not null && TryLink(src, staged))
        {
            Interlocked.Increment(ref _reused);
        }
        else if (src.ReuseFrom is null && TryPlaceReceived(f, staged))
        {
            // Received and verified before the transaction began; its bytes were counted then.
            Record(new FileRow(f.Path, f.Sha256, f.Parts[0].Sha256, FileState.Staged));
        }
        else
        {
            // A reused file copied because it could not be linked (a volume without hard links) is not in the plan's
            // bytes to write, the phase's announced total: its bytes are written but not counted as progress.
            var planned = src.ReuseFrom is null;
            var observed = WriteContent(staged, src, n =>
            {
                if (planned) Interlocked.Add(ref _bytesDone, n);
                Interlocked.Add(ref _bytesWritten, n);
            }, ct);
            Record(new FileRow(f.Path, f.Sha256, observed, FileState.Staged));
        }
    }

    /// <summary>
    /// Whether the file an earlier attempt of the transaction staged at <paramref name="f"/>'s path (seen as
    /// <paramref name="existing"/>) is kept: its row says it was verified and made durable, and it has the right size.
    /// </summary>
    private static bool StagedEarlier(EntryInfo existing, TargetFile f, IReadOnlyDictionary<string, FileRow> rows) =>
        existing.Kind == EntryKind.File && existing.Size == f.Size && rows.TryGetValue(f.Path, out var row) && row.Observed == f.Sha256;

    /// <summary>
    /// The files written from the patch (not reused from the install) that an earlier attempt of the transaction
    /// staged in <paramref name="stagingDir"/> and that staging will keep: their content need not be received again.
    /// </summary>
    public static HashSet<string> KeptFromEarlierAttempt(IFileOps fs, string stagingDir, ApplyPlan plan, IReadOnlyDictionary<string, FileRow> rows)
    {
        var kept = new HashSet<string>(StringComparer.Ordinal);
        if (rows.Count == 0) return kept;
        foreach (var src in plan.Files)
        {
            if (src.ReuseFrom is null && StagedEarlier(fs.Stat(PathRules.Join(stagingDir, src.File.Path)), src.File, rows)) kept.Add(src.File.Path);
        }

        return kept;
    }

    private void Record(FileRow row)
    {
        _rows.Enqueue(row);
        Interlocked.Increment(ref _written);
        if (_rows.Count >= RowBatch) FlushRows();
    }

    /// <summary>
    /// The user's own files: hard links keep them byte-identical and cost nothing. Anything they change
    /// or add between now and the commit is carried over by the post-commit sweep.
    /// </summary>
    private void LinkUserEntries(CancellationToken ct)
    {
        foreach (var e in request.Plan.UserEntries)
        {
            ct.ThrowIfCancellationRequested();
            var from = PathRules.Join(_installDir, e.Path);
            var to = PathRules.Join(_stagingDir, e.Path);
            var there = fs.Stat(to);
            switch (e.Info.Kind)
            {
                case EntryKind.File when there.Kind == EntryKind.Missing:
                    if (!fs.TryHardLink(from, to)) TreeOps.CopyDurably(fs, from, to);
                    break;
                case EntryKind.Symlink when there.Kind == EntryKind.Missing:
                    fs.CopySymlink(from, to);
                    break;
            }
        }
    }

    /// <summary>
    /// The staged tree replaces the install's directories, so it takes over their permissions (a 0700 saves folder stays
    /// 0700; the install root keeps its mode). Done after every file is in place, so a read-only directory does not stop
    /// staging; the fsyncs make the modes durable. Ownership and ACLs are not copied. Every directory entry is made
    /// durable, then the staging root itself: all complete before the backup-complete row, so their order does not
    /// matter, and many in flight let the file system commit them together (docs/benchmarks.md).
    /// </summary>
    private void FinishDirectories(SortedSet<string> dirs, CancellationToken ct)
    {
        fs.CopyMode(_installDir, _stagingDir);
        foreach (var d in dirs)
        {
            var source = PathRules.Join(_installDir, d);
            if (fs.Stat(source).Kind == EntryKind.Directory) fs.CopyMode(source, PathRules.Join(_stagingDir, d));
        }

        StagingWorkers.ForEach(dirs.Reverse().ToList(), ct, d => fs.SyncDirectory(PathRules.Join(_stagingDir, d)));
        fs.SyncDirectory(_stagingDir);
    }

    private void FlushRows()
    {
        lock (_journalGate)
        {
            var batch = new List<FileRow>();
            while (_rows.TryDequeue(out var r)) batch.Add(r);
            journal.RecordFiles(request.TxId, batch);
        }
    }
}
