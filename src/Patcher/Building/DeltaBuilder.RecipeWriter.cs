using System.Security.Cryptography;
using Patching.Manifests;

namespace Patching.Building;

internal sealed partial class DeltaBuilder
{
    /// <summary>
    /// The ops of one file's recipe, built chunk by chunk in file order: chunks found in the base grow a copy of a base
    /// range, and the new bytes between them gather into a run that becomes one compressed frame.
    /// </summary>
    /// <param name="owner">The builder whose base index, counters and compression level the recipe uses.</param>
    /// <param name="content">The rank of the content being built in recipe order: its runs may reference the contents before it.</param>
    /// <param name="likely">The source the new file most likely evolved from (<see cref="Likely"/>), or -1.</param>
    /// <param name="payload">Where the frames are written, each identical frame once.</param>
    private sealed class RecipeWriter(DeltaBuilder owner, int content, int likely, Stream payload)
    {
        private readonly Dictionary<(string Output, string? Ref), (long Offset, long Length)> _written = new();
        private readonly List<DeltaOp> _ops = new();

        /// <summary>
        /// Frames being compressed, in op order: the data op's index, its key, and the compression (null when an earlier
        /// frame with the same key is written or queued: that one is reused). Drained in order, so the frames land in
        /// the same order whatever finishes first.
        /// </summary>
        private readonly Queue<(int Op, (string Output, string? Ref) Key, Task<byte[]>? Compressing)> _pending = new();
        private readonly HashSet<(string Output, string? Ref)> _queued = new();
        private readonly MemoryStream _run = new();
        private (int File, long Offset, long Length, IncrementalHash Sha)? _copy;
        private (int File, long End)? _lastCopy;
        private long _runStart;

        /// <summary>A chunk found at <paramref name="offset"/> of base file <paramref name="file"/>.</summary>
        public void Found(int file, long offset, ReadOnlySpan<byte> chunk)
        {
            FlushRun((file, offset));
            if (_copy is { } c && c.File == file && c.Offset + c.Length == offset && c.Length + chunk.Length <= DeltaLimits.MaxDataLength)
            {
                _copy = (c.File, c.Offset, c.Length + chunk.Length, c.Sha);
            }
            else
            {
                FlushCopy();
                _copy = (file, offset, chunk.Length, IncrementalHash.CreateHash(HashAlgorithmName.SHA256));
            }

            _copy.Value.Sha.AppendData(chunk);
        }

        /// <summary>A chunk the base lacks, at <paramref name="offset"/> of the new file.</summary>
        public void New(long offset, ReadOnlySpan<byte> chunk)
        {
            FlushCopy();
            if (_run.Length + chunk.Length > MaxRun) FlushRun(null);
            if (_run.Length == 0) _runStart = offset;
            _run.Write(chunk);
        }

        public List<DeltaOp> Finish()
        {
            FlushCopy();
            FlushRun(null);
            while (_pending.Count > 0) WriteOldest();
            return _ops;
        }

        /// <summary>Waits for the oldest queued frame, writes it unless an identical one is written, and gives its op the frame's place.</summary>
        private void WriteOldest()
        {
            var (index, key, compressing) = _pending.Dequeue();
            if (compressing is not null && !_written.ContainsKey(key))
            {
                var compressed = compressing.GetAwaiter().GetResult();
                _written[key] = (payload.Position, compressed.Length);
                payload.Write(compressed);
            }

            var frame = _written[key];
            _ops[index] = _ops[index] with { PayloadOffset = frame.Offset, StoredLength = frame.Length };
        }

        private void FlushCopy()
        {
            if (_copy is not { } c) return;
            _ops.Add(new DeltaOp
            {
                Kind = DeltaOpKind.Copy, Length = c.Length, Sha256 = Convert.ToHexStringLower(c.Sha.GetHashAndReset()),
                BasePath = owner.BasePath(c.File), BaseOffset = c.Offset,
            });
            c.Sha.Dispose();
            Interlocked.Add(ref owner._reused, c.Length);
            _lastCopy = (c.File, c.Offset + c.Length);
            _copy = null;
        }

        /// <param name="next">Where the matched chunk that ends the run lies in the base (the run's bytes likely precede it there too).</param>
        private void FlushRun((int File, long Offset)? next)
        {
            if (_run.Length == 0) return;
            _ops.Add(Frame(_run.GetBuffer().AsSpan(0, (int)_run.Length), next));
            _run.SetLength(0);
        }

        /// <summary>
        /// Queues the compression of one run of new bytes against reference windows around the copies
        /// (<see cref="ReferencePoints"/>) and in the sources holding the bytes those lack (<see cref="WhereFound"/>),
        /// unless an identical frame (same output, same references) is written or queued.
        /// Up to <see cref="MaxPending"/> frames of one file compress at once, so a single large file keeps every core busy;
        /// each holds its run and reference (at most <see cref="MaxRun"/> + <see cref="DeltaLimits.MaxRefLength"/> bytes).
        /// </summary>
        private DeltaOp Frame(ReadOnlySpan<byte> bytes, (int File, long Offset)? next)
        {
            // The windows around the copies come first; the sources holding the bytes those lack take the other windows.
            var points = ReferencePoints(bytes.Length, next);
            var covered = owner.FineHashes(owner.Windows(points, [], bytes.Length));
            var windows = owner.Windows(points, owner.WhereFound(content, bytes, DeltaLimits.MaxRefs - points.Count, covered), bytes.Length);
            var (reference, refs) = owner.ReadReference(windows);
            var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var key = FrameKey(sha, refs);
            Task<byte[]>? compressing = null;
            if (!_written.ContainsKey(key) && _queued.Add(key))
            {
                var input = bytes.ToArray();
                compressing = Task.Factory.StartNew(() => owner.Compress(reference, input), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }

            Interlocked.Add(ref refs.Count == 0 ? ref owner._wholeContent : ref owner._deltaContent, bytes.Length);
            _pending.Enqueue((_ops.Count, key, compressing));
            var op = new DeltaOp { Kind = DeltaOpKind.Data, Length = bytes.Length, Sha256 = sha, Refs = refs };
            while (_pending.Count > MaxPending) WriteOldest();
            return op;
        }

        /// <summary>
        /// Where in the base a run of <paramref name="length"/> new bytes most likely came from: around the end of the
        /// range copied just before the run (an edit continues where the copy stopped), and around the start of the range
        /// copied just after it (content moved in from another file precedes it there); the likely source (the same
        /// path's old file) at the same offset when neither exists.
        /// </summary>
        private List<(int File, long At)> ReferencePoints(int length, (int File, long Offset)? next)
        {
            var points = new List<(int File, long At)>();
            if (_lastCopy is { } p) points.Add((p.File, p.End + (length / 2)));
            if (next is { } n) points.Add((n.File, n.Offset - (length / 2)));
            if (points.Count == 0 && likely >= 0) points.Add((likely, _runStart + (length / 2)));
            return points;
        }
    }
}
