using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Recovery;
using Patching.Sources;
using Patching.Transaction;

namespace Patching.Staging;

/// <summary>
/// Builds the shadow tree: the complete new version plus the user's files, beside the install, on the same
/// volume. Unchanged files are hard-linked (copied where links are impossible), new content is streamed from
/// blobs, hashed while written and fsynced; every directory is fsynced at the end. Rows for verified files
/// are journaled after the files are durable, so a later Apply of the same patch can resume.
/// </summary>
internal sealed partial class Stager(IFileOps fs, JournalStore journal, ILogger log)
{
    private const int RowBatch = 256;
    private readonly object _journalGate = new();

    public int FilesWritten { get; private set; }
    public int FilesReused { get; private set; }
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>Blobs <see cref="Receive"/> hard-linked from the patch instead of copying them.</summary>
    public int BlobsLinked { get; private set; }
    private long _bytesWritten;

    /// <summary>Blobs received by <see cref="Receive"/>, by hash, with the executable bit their file was given.</summary>
    private readonly ConcurrentDictionary<string, bool> _received = new(StringComparer.Ordinal);
    private string? _incomingDir;

    /// <summary>
    /// Reads, hashes and writes every blob the new version's files are written from, once, into
    /// <paramref name="incomingDir"/>, before the transaction has a journal row: a corrupt or hostile blob is found
    /// here, and refusing it leaves nothing to undo but this directory. <see cref="Stage"/> then hard-links the
    /// received files into the shadow tree instead of reading the blobs a second time. Each received file is
    /// fsynced (with its mode) before it is linked, so the link's directory fsync is all staging adds. Blobs that no
    /// single-part file is written from are hashed only: every blob the signed manifest lists is checked here.
    /// </summary>
    /// <remarks>
    /// With <paramref name="linkBlobs"/> (<see cref="PatcherOptions.LinkPatchBlobs"/>), a blob stored uncompressed on the
    /// install's volume is hashed where it lies and hard-linked instead of copied: no byte of it is written again.
    /// </remarks>
    public void Receive(string incomingDir, ApplyPlan plan, PatchPackage package, bool linkBlobs, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        package.CheckBlobsPresent();
        TreeOps.DeleteTree(fs, incomingDir); // what a crashed attempt received is not trusted
        fs.CreateDirectory(incomingDir);
        _incomingDir = incomingDir;
        var executable = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var src in plan.Files)
        {
            if (src.ReuseFrom is null && src.File.Parts.Count == 1) executable.TryAdd(src.File.Parts[0].Sha256, src.File.Executable);
        }

        foreach (var fan in executable.Keys.Select(FanOut).Distinct(StringComparer.Ordinal)) fs.CreateDirectory(Path.Join(incomingDir, fan));
        ReceiveRecipes(incomingDir, plan, package, executable, progress, ct);

        var blobs = package.Manifest.Blobs.OrderByDescending(b => b.Size).ToList();
        long bytesDone = 0;
        var blobsDone = 0;
        var linked = 0;
        // Received files are fsynced in batches, not one by one as they are written: once SyncBatch files are written, the
        // worker that wrote the last of them writes the file system back in one pass and fsyncs each file of the batch
        // through the descriptor that wrote it, while the other workers go on receiving (IFileOps.FlushFileSystem).
        // A written blob counts as done once its fsync returned, so that the count reaches the total only when every
        // received file is durable (the bytes count what was written; the batch's write-back comes after them).
        var batch = new List<Stream>();
        var gate = new object();
        // Counters are read and reported under one lock, so that a worker that read them before another's batch was
        // counted cannot report after it: the counts a launcher sees never go back.
        var reporting = new object();
        void Report(string? item = null)
        {
            if (progress is null) return;
            lock (reporting) progress.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref blobsDone), blobs.Count, Interlocked.Read(ref bytesDone), plan.BytesToWrite) { CurrentItem = item });
        }

        void Durable(List<Stream> written)
        {
            if (written.Count == 0) return;
            SyncReceived(incomingDir, written, ct);
            Interlocked.Add(ref blobsDone, written.Count);
            Report();
        }

        void Written(Stream output)
        {
            List<Stream>? full = null;
            lock (gate)
            {
                batch.Add(output);
                if (batch.Count >= SyncBatch)
                {
                    full = batch;
                    batch = [];
                }
            }

            if (full is not null) Durable(full);
        }

        try
        {
            ForEachFile(blobs, ct, blob =>
            {
                void OnBytes(long n)
                {
                    Interlocked.Add(ref bytesDone, n);
                    Report(blob.RelativePath);
                }

                if (!executable.TryGetValue(blob.Sha256, out var x))
                {
                    package.CopyBlob(blob.Sha256, Stream.Null, null, ct);
                    Interlocked.Increment(ref blobsDone);
                }
                else
                {
                    var path = ReceivedPath(incomingDir, blob.Sha256);
                    if (linkBlobs && package.TryLinkBlob(blob.Sha256, fs, path, x, OnBytes, ct))
                    {
                        // Linked and fsynced by TryLinkBlob.
                        Interlocked.Increment(ref linked);
                        Interlocked.Increment(ref blobsDone);
                    }
                    else
                    {
                        var output = OpenReceived(path, ct);
                        package.CopyBlob(blob.Sha256, output, n =>
                        {
                            OnBytes(n);
                            Interlocked.Add(ref _bytesWritten, n);
                        }, ct);
                        // The mode is inode metadata: set before the fsync, or a power cut could lose it (see WriteContent).
                        if (x) fs.SetExecutable(path, true);
                        Written(output);
                    }

                    _received[blob.Sha256] = x;
                }
            });
            Durable(batch);
        }
        finally
        {
            foreach (var output in _open.Keys) CloseReceived(output);
        }

        BlobsLinked = linked;
        log.LogInformation("Received {Count} blobs into {Incoming}: {Linked} linked from the patch, {Bytes} bytes written", _received.Count, incomingDir, linked, BytesWritten);
    }

    /// <summary>
    /// Received files are spread over up to 16 subdirectories by the first hex digit of their hash. Creating a file
    /// holds its directory's lock while the file system allocates the inode, and on ext4 without a journal that
    /// allocation scans past every inode of its group freed in the last minute (a deleted old tree, an earlier attempt): with
    /// one directory the workers took turns behind that lock (a profile showed them spinning on it), with sixteen they
    /// create in parallel. Measured in docs/benchmarks.md (sixth round).
    /// </summary>
    private static string FanOut(string sha256) => sha256[..1];

    private static string ReceivedPath(string incomingDir, string sha256) => Path.Join(incomingDir, FanOut(sha256), sha256);

    /// <summary>
    /// After staging, the received files live on as links in the shadow tree; the incoming directory goes to the trash
    /// (one rename) and is deleted with the old tree, off the critical path. On Windows it is deleted at once (below).
    /// </summary>
    public void ReleaseReceived(StateLayout layout, string txId)
    {
        var incoming = _incomingDir;
        if (incoming is null || fs.Stat(incoming).Kind != EntryKind.Directory) return;
        _incomingDir = null;
        if (OperatingSystem.IsWindows())
        {
            // A received file is another name of a file the update installs (staging linked it). On Windows, deleting a
            // name opens the file for DELETE access, and while that handle exists, opening any name of the file without
            // FILE_SHARE_DELETE (what File.ReadAllBytes and most games do) fails with a sharing violation. So the names
            // are deleted here, before the commit, rather than from the trash after Apply returned, when the game may
            // already be reading its new files. (The likely cause of a Wine scenario that failed once, reading the
            // install right after Apply; not proven.) A name that cannot be deleted now (a scanner holding the file)
            // goes to the trash as before.
            try
            {
                TreeOps.DeleteTree(fs, incoming);
                return;
            }
            catch (PatcherException ex)
            {
                log.LogInformation("Could not delete the received blobs in {Incoming} now ({Reason}); moving them to the trash", incoming, ex.Message);
            }
        }

        Recoverer.MoveToTrash(fs, layout, incoming, txId + "-incoming");
    }

    /// <summary>
    /// Places a file written from one received blob: a hard link to the received file for the first such file (with
    /// the same executable bit), a copy of it for any other (a second file with the same content, or another mode),
    /// so no two files of the install share an inode: a game that rewrites one of them in place must not change the
    /// other. The received file was verified and fsynced; copying it reads no byte of the patch again.
    /// </summary>
    private bool TryPlaceReceived(TargetFile f, string staged)
    {
        if (_incomingDir is null || f.Parts.Count != 1 || !_received.TryGetValue(f.Parts[0].Sha256, out var x)) return false;
        var received = ReceivedPath(_incomingDir, f.Parts[0].Sha256);
        if (x == f.Executable && Claim("received:" + f.Parts[0].Sha256) && fs.TryHardLink(received, staged)) return true;
        using var input = fs.OpenRead(received);
        using var output = fs.Create(staged);
        input.CopyTo(output, ContentHash.BufferSize);
        if (f.Executable) fs.SetExecutable(staged, true); // before the fsync, as in WriteContent
        fs.Sync(output);
        return true;
    }

    /// <summary>Sources already hard-linked into the shadow tree: each may be linked once (see <see cref="TryPlaceReceived"/>).</summary>
    private readonly ConcurrentDictionary<string, byte> _linked = new(StringComparer.Ordinal);

    private bool Claim(string source) => _linked.TryAdd(source, 0);

    /// <summary>
    /// Install files that stay where they are (the layered strategy keeps unchanged files in place): a file staged
    /// with the same content is copied from them, never linked, or the two paths would share an inode.
    /// </summary>
    public void KeepUnlinked(IEnumerable<string> installPaths)
    {
        foreach (var p in installPaths) Claim("install:" + p);
    }

    public void Stage(string txId, string installDir, string stagingDir, ApplyPlan plan, PatchPackage? package,
        IReadOnlyDictionary<string, FileRow> verifiedRows, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var manifest = plan.Manifest;
        // A staging directory made just now holds nothing: no per-file probe for leftovers of an earlier attempt.
        var fresh = fs.Stat(stagingDir).Kind == EntryKind.Missing;
        if (fresh)
        {
            fs.CreateDirectory(stagingDir);
            fs.SyncDirectory(Path.GetDirectoryName(stagingDir)!);
        }

        // Directories first, parents before children: the new version's, then the user's.
        var dirs = new SortedSet<string>(plan.StagesWholeTree ? manifest.Directories : plan.Files.SelectMany(f => PathRules.Ancestors(f.File.Path)), StringComparer.Ordinal);
        foreach (var e in plan.UserEntries)
        {
            if (e.Info.Kind == EntryKind.Directory) dirs.Add(e.Path);
            dirs.UnionWith(PathRules.Ancestors(e.Path));
        }

        foreach (var d in dirs)
        {
            var path = PathRules.Join(stagingDir, d);
            if (fresh || fs.Stat(path).Kind != EntryKind.Directory) fs.CreateDirectory(path);
        }

        var total = plan.Files.Count;
        var done = 0;
        long bytesDone = BytesWritten; // what Receive wrote is already done
        var rows = new ConcurrentQueue<FileRow>();
        int written = 0, reused = 0;

        void Report(string item) => progress?.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref done), total, Interlocked.Read(ref bytesDone), plan.BytesToWrite) { CurrentItem = item });

        var walked = plan.Walked ?? new WalkedTree(installDir);
        // Large files first, so the workers finish together.
        var order = plan.Files.OrderByDescending(f => f.ReuseFrom is null ? f.File.Size : 0).ToList();
        ForEachFile(order, ct, src =>
        {
            var f = src.File;
            var staged = PathRules.Join(stagingDir, f.Path);
            var existing = fresh ? default : fs.Stat(staged);
            if (existing.Kind == EntryKind.File && existing.Size == f.Size &&
                verifiedRows.TryGetValue(f.Path, out var row) && row.Observed == f.Sha256)
            {
                // Resumed: this file was staged, verified and made durable by an earlier attempt.
                Interlocked.Increment(ref reused);
            }
            else
            {
                if (existing.Kind != EntryKind.Missing) fs.DeleteFile(staged);
                if (src.ReuseFrom is not null && TryLink(walked, src, staged))
                {
                    Interlocked.Increment(ref reused);
                }
                else if (src.ReuseFrom is null && TryPlaceReceived(f, staged))
                {
                    // Received and verified before the transaction began; its bytes were counted then.
                    rows.Enqueue(new FileRow(f.Path, f.Sha256, f.Parts[0].Sha256, "staged"));
                    Interlocked.Increment(ref written);
                    if (rows.Count >= RowBatch) FlushRows(txId, rows);
                }
                else
                {
                    var observed = WriteContent(installDir, staged, src, package, n =>
                    {
                        Interlocked.Add(ref bytesDone, n);
                        Interlocked.Add(ref _bytesWritten, n);
                    }, ct);
                    rows.Enqueue(new FileRow(f.Path, f.Sha256, observed, "staged"));
                    Interlocked.Increment(ref written);
                    if (rows.Count >= RowBatch) FlushRows(txId, rows);
                }
            }

            Interlocked.Increment(ref done);
            Report(f.Path);
        });
        FlushRows(txId, rows);

        // The user's own files: hard links keep them byte-identical and cost nothing. Anything they change
        // or add between now and the commit is carried over by the post-commit sweep.
        foreach (var e in plan.UserEntries)
        {
            ct.ThrowIfCancellationRequested();
            var from = PathRules.Join(installDir, e.Path);
            var to = PathRules.Join(stagingDir, e.Path);
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

        // The staged tree replaces the install's directories, so it takes over their permissions (a 0700 saves
        // folder stays 0700; the install root keeps its mode). Done after every file is in place, so a read-only
        // directory does not stop staging; the fsyncs below make the modes durable. Ownership and ACLs are not copied.
        fs.CopyMode(installDir, stagingDir);
        foreach (var d in dirs)
        {
            var source = PathRules.Join(installDir, d);
            if (fs.Stat(source).Kind == EntryKind.Directory) fs.CopyMode(source, PathRules.Join(stagingDir, d));
        }

        // Make every directory entry durable, then the staging root itself. All of them complete before the
        // backup-complete row, so their order does not matter; many in flight let the file system commit them
        // together (measured in docs/benchmarks.md: 211 directories one after another took 35 ms quiet and 265 ms
        // under load, with 16 at once 25 and 33 ms).
        ForEachFile(dirs.Reverse().ToList(), ct, d => fs.SyncDirectory(PathRules.Join(stagingDir, d)));
        fs.SyncDirectory(stagingDir);
        FilesWritten = written;
        FilesReused = reused;
        log.LogInformation("Staged {Total} files ({Written} written, {Reused} reused) in {Staging}", total, written, reused, stagingDir);
    }

    /// <summary>
    /// Staging waits on fsync far more than it computes: several files in flight keep the disk's queue full
    /// (measured in docs/benchmarks.md: 1,000 fsynced files took a third less time with 16 at once than with 2).
    /// </summary>
    private static readonly int IoWorkers = Math.Clamp(Environment.ProcessorCount * 4, 4, 16);

    /// <summary>Received files written back together, then fsynced (bounds the descriptors held open).</summary>
    private const int SyncBatch = 256;

    /// <summary>
    /// Makes a batch of received files durable: one write-back of the file system (a hint; where it fails or is not
    /// supported, the fsyncs do all the work), then an fsync of each file through the descriptor that wrote it, which
    /// reports a failed write-back of that file. Closes the descriptors.
    /// </summary>
    private void SyncReceived(string incomingDir, List<Stream> batch, CancellationToken ct)
    {
        if (batch.Count == 0) return;
        if (!fs.FlushFileSystem(incomingDir)) log.LogDebug("No write-back of the file system holding {Incoming}; fsyncing each received file", incomingDir);
        ForEachFile(batch, ct, fs.Sync);
        foreach (var output in batch) CloseReceived(output);
    }

    /// <summary>Received files open for writing or waiting for their fsync; at most two batches (writers wait for the older one's fsyncs).</summary>
    private readonly ConcurrentDictionary<Stream, byte> _open = new();
    private readonly SemaphoreSlim _openSlots = new(2 * SyncBatch);

    private Stream OpenReceived(string path, CancellationToken ct)
    {
        _openSlots.Wait(ct);
        try
        {
            var output = fs.Create(path);
            _open[output] = 0;
            return output;
        }
        catch
        {
            _openSlots.Release();
            throw;
        }
    }

    private void CloseReceived(Stream output)
    {
        if (!_open.TryRemove(output, out _)) return;
        output.Dispose();
        _openSlots.Release();
    }

    /// <summary>
    /// Parallel over the files, unless the caller runs on a task scheduler that admits one task at a time (a UI
    /// thread's, or the power-loss simulation's): then a plain loop in plan order, so the sequence of file
    /// operations is the same on every run. <see cref="Parallel.ForEach{TSource}(IEnumerable{TSource}, ParallelOptions, Action{TSource})"/>
    /// would ignore that scheduler (its options default to the thread pool).
    /// </summary>
    private static void ForEachFile<T>(IReadOnlyList<T> items, CancellationToken ct, Action<T> body)
    {
        if (!Parallelism.OneTaskAtATime)
        {
            Parallelism.ForEachIo(items, IoWorkers, ct, body);
            return;
        }

        foreach (var item in items)
        {
            ct.ThrowIfCancellationRequested();
            body(item);
        }
    }

    private bool TryLink(WalkedTree walked, FileSource src, string staged)
    {
        // A hard link shares the inode, so the executable bit would change in the old tree too: copy instead.
        // The bit is the one the plan's walk saw moments ago: a chmod racing the apply could slip past it just as it
        // could slip between a fresh stat and the link, so the walk's answer is as good and saves a stat per file.
        if (src.ReuseInfo.Executable != src.File.Executable && !OperatingSystem.IsWindows()) return false;
        // One link per source: a second file with the same content is copied (and verified) instead, so that the
        // new install has no two files sharing an inode.
        return Claim("install:" + src.ReuseFrom) && fs.TryLinkWalkedFile(walked, src.ReuseFrom!, src.ReuseInfo, staged);
    }

    private string WriteContent(string installDir, string staged, FileSource src, PatchPackage? package, Action<long> onBytes, CancellationToken ct)
    {
        var f = src.File;
        string observed;
        using (var output = fs.Create(staged))
        {
            if (src.ReuseFrom is not null)
            {
                // Copy from the old version, verifying the content really is what the base promised.
                var from = PathRules.Join(installDir, src.ReuseFrom);
                using var input = fs.OpenRead(from);
                var (length, hash) = ContentHash.CopyAndHash(input, output, f.Size, onBytes, ct);
                if (length != f.Size || hash != f.Sha256)
                    throw new PatcherException(PatchErrorCode.BaseMismatch, $"'{src.ReuseFrom}' changed while it was being copied", src.ReuseFrom);
                observed = hash;
            }
            else
            {
                foreach (var part in f.Parts) package!.CopyBlob(part.Sha256, output, onBytes, ct);
                observed = f.Parts.Count == 1 ? f.Parts[0].Sha256 : f.Sha256;
            }

            // The mode is inode metadata: only an fsync of this inode after the chmod makes it durable. Set after
            // the fsync, a power cut could leave a journaled, "verified" file that has lost its executable bit.
            if (f.Executable) fs.SetExecutable(staged, true);
            fs.Sync(output);
        }

        if (f.Parts.Count > 1)
        {
            using var check = fs.OpenRead(staged);
            observed = ContentHash.OfStream(check, ct);
            if (observed != f.Sha256)
                throw new PatcherException(PatchErrorCode.BlobHashMismatch, $"'{f.Path}' assembled from its parts has SHA-256 {observed}, declared {f.Sha256}", f.Path);
        }

        return observed;
    }

    private void FlushRows(string txId, ConcurrentQueue<FileRow> rows)
    {
        lock (_journalGate)
        {
            var batch = new List<FileRow>();
            while (rows.TryDequeue(out var r)) batch.Add(r);
            journal.RecordFiles(txId, batch);
        }
    }
}
