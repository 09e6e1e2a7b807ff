using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Sources;

namespace Patching.Staging;

/// <summary>
/// Reads, hashes and writes every blob the new version's files are written from, once, into the incoming directory,
/// before the transaction has a journal row: a corrupt or hostile blob is found here, and refusing it leaves nothing to
/// undo but this directory. The shadow tree then hard-links the received files instead of reading the blobs a second
/// time. Each received file is fsynced (with its mode) before it is linked, so the link's directory fsync is all
/// staging adds. Blobs that no single-part file is written from are hashed only: every blob the signed manifest lists
/// is checked here. One instance receives once.
/// </summary>
/// <remarks>
/// With <c>linkBlobs</c> (<see cref="PatcherOptions.LinkPatchBlobs"/>), a blob stored uncompressed on the install's
/// volume is hashed where it lies and hard-linked instead of copied: no byte of it is written again.
/// </remarks>
internal sealed partial class BlobReceiver(IFileOps fs, ILogger log, PatchPackage package, string incomingDir)
{
    /// <summary>Received files written back together, then fsynced (bounds the descriptors held open).</summary>
    private const int SyncBatch = 256;

    /// <summary>Blobs received, by hash, with the executable bit their file was given.</summary>
    private readonly ConcurrentDictionary<string, bool> _received = new(StringComparer.Ordinal);

    /// <summary>Received files open for writing or waiting for their fsync; at most two batches (writers wait for the older one's fsyncs).</summary>
    private readonly ConcurrentDictionary<Stream, byte> _open = new();
    private readonly SemaphoreSlim _openSlots = new(2 * SyncBatch);

    /// <summary>Contents rebuilt into the partial directory (<see cref="Checkpoints"/>), by hash: where each lies.</summary>
    private readonly ConcurrentDictionary<string, string> _rebuilt = new(StringComparer.Ordinal);
    private long _bytesWritten;

    /// <summary>Where rebuilt contents go, resumably; null: into the incoming directory, rebuilt from the start after a crash.</summary>
    public ContentCheckpoints? Checkpoints { get; init; }

    /// <summary>
    /// Files (by path) that a resumed transaction already staged, verified and journaled: staging keeps them, so their
    /// content is not written or rebuilt again (blobs are still read and checked).
    /// </summary>
    public IReadOnlySet<string> AlreadyStaged { get; init; } = new HashSet<string>();

    public ReceivedBlobs Receive(ApplyPlan plan, bool linkBlobs, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        package.CheckBlobsPresent();
        TreeOps.DeleteTree(fs, incomingDir); // what a crashed attempt received is not trusted
        fs.CreateDirectory(incomingDir);
        var executable = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var src in plan.Files)
        {
            if (src.ReuseFrom is null && src.File.Parts.Count == 1 && !AlreadyStaged.Contains(src.File.Path)) executable.TryAdd(src.File.Parts[0].Sha256, src.File.Executable);
        }

        foreach (var fan in executable.Keys.Select(ReceivedBlobs.FanOut).Distinct(StringComparer.Ordinal)) fs.CreateDirectory(Path.Join(incomingDir, fan));
        ReceiveRecipes(plan, executable, progress, ct);
        var linked = ReceiveBlobs(plan, executable, linkBlobs, progress, ct);
        log.LogInformation("Received {Count} blobs into {Incoming}: {Linked} linked from the patch, {Bytes} bytes written", _received.Count, incomingDir, linked, Interlocked.Read(ref _bytesWritten));
        return new ReceivedBlobs(incomingDir, _received, Interlocked.Read(ref _bytesWritten), linked) { Rebuilt = _rebuilt };
    }

    /// <summary>Receives the blobs, largest first; returns how many were linked from the patch.</summary>
    private int ReceiveBlobs(ApplyPlan plan, Dictionary<string, bool> executable, bool linkBlobs, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var blobs = package.Manifest.Blobs.OrderByDescending(b => b.Size).ToList();
        var counts = new ReceiveCounts(progress, blobs.Count, plan.BytesToWrite);
        var batches = new SyncBatches(this, counts, ct);
        var linked = 0;
        try
        {
            StagingWorkers.ForEach(blobs, ct, blob =>
            {
                void OnBytes(long n)
                {
                    counts.AddBytes(n);
                    counts.Report(blob.RelativePath);
                }

                if (!executable.TryGetValue(blob.Sha256, out var x))
                {
                    package.CopyBlob(blob.Sha256, Stream.Null, null, ct);
                    counts.AddDone(1);
                    return;
                }

                var path = ReceivedBlobs.PathOf(incomingDir, blob.Sha256);
                if (linkBlobs && package.TryLinkBlob(blob.Sha256, fs, path, x, OnBytes, ct))
                {
                    // Linked and fsynced by TryLinkBlob.
                    Interlocked.Increment(ref linked);
                    counts.AddDone(1);
                }
                else
                {
                    var output = OpenReceived(path, ct);
                    package.CopyBlob(blob.Sha256, output, n =>
                    {
                        OnBytes(n);
                        Interlocked.Add(ref _bytesWritten, n);
                    }, ct);
                    // The mode is inode metadata: set before the fsync, or a power cut could lose it.
                    if (x) fs.SetExecutable(path, true);
                    batches.Written(output);
                }

                _received[blob.Sha256] = x;
            });
            batches.Flush();
        }
        finally
        {
            foreach (var output in _open.Keys) CloseReceived(output);
        }

        return linked;
    }

    /// <summary>
    /// Counts of the blobs done and bytes written, read and reported under one lock, so that a worker that read them
    /// before another's batch was counted cannot report after it: the counts a launcher sees never go back.
    /// </summary>
    private sealed class ReceiveCounts(IProgress<PatchProgress>? progress, int total, long bytesTotal)
    {
        private readonly Lock _reporting = new();
        private long _bytes;
        private int _done;

        public void AddBytes(long n) => Interlocked.Add(ref _bytes, n);

        public void AddDone(int n) => Interlocked.Add(ref _done, n);

        public void Report(string? item = null)
        {
            if (progress is null) return;
            lock (_reporting) progress.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref _done), total, Interlocked.Read(ref _bytes), bytesTotal) { CurrentItem = item });
        }
    }

    /// <summary>
    /// Received files are fsynced in batches, not one by one as they are written: once <see cref="SyncBatch"/> files are
    /// written, the worker that wrote the last of them writes the file system back in one pass and fsyncs each file of
    /// the batch through the descriptor that wrote it, while the other workers go on receiving
    /// (<see cref="IFileOps.FlushFileSystem"/>). A written blob counts as done once its fsync returned, so that the count
    /// reaches the total only when every received file is durable.
    /// </summary>
    private sealed class SyncBatches(BlobReceiver receiver, ReceiveCounts counts, CancellationToken ct)
    {
        private readonly Lock _gate = new();
        private List<Stream> _batch = [];

        public void Written(Stream output)
        {
            List<Stream>? full = null;
            lock (_gate)
            {
                _batch.Add(output);
                if (_batch.Count >= SyncBatch)
                {
                    full = _batch;
                    _batch = [];
                }
            }

            if (full is not null) Durable(full);
        }

        public void Flush() => Durable(_batch);

        private void Durable(List<Stream> written)
        {
            if (written.Count == 0) return;
            receiver.SyncReceived(written, ct);
            counts.AddDone(written.Count);
            counts.Report();
        }
    }

    /// <summary>
    /// Makes a batch of received files durable: one write-back of the file system (a hint; where it fails or is not
    /// supported, the fsyncs do all the work), then an fsync of each file through the descriptor that wrote it, which
    /// reports a failed write-back of that file. Closes the descriptors.
    /// </summary>
    private void SyncReceived(List<Stream> batch, CancellationToken ct)
    {
        if (batch.Count == 0) return;
        if (!fs.FlushFileSystem(incomingDir)) log.LogDebug("No write-back of the file system holding {Incoming}; fsyncing each received file", incomingDir);
        StagingWorkers.ForEach(batch, ct, fs.Sync);
        foreach (var output in batch) CloseReceived(output);
    }

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
}
