using System.IO.Hashing;
using System.Security.Cryptography;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Building;

/// <summary>What a format 2 build shipped and reused, in bytes.</summary>
/// <param name="ReusedBytes">Target bytes taken from the base: whole files found there, and ranges copied from base files.</param>
/// <param name="DeltaBytes">Payload bytes of frames compressed against a reference window of the base.</param>
/// <param name="DeltaContentBytes">Target bytes those frames decode to.</param>
/// <param name="WholeBytes">Payload bytes of frames compressed without a reference.</param>
/// <param name="WholeContentBytes">Target bytes those frames decode to.</param>
internal sealed record DeltaStats(long ReusedBytes, long DeltaBytes, long DeltaContentBytes, long WholeBytes, long WholeContentBytes)
{
    public long PayloadBytes => DeltaBytes + WholeBytes;
}

/// <summary>
/// Builds format 2 recipes. Every base file is cut into content-defined chunks (<see cref="Chunker"/>) indexed by
/// XxHash128 (no adversary here: the builder reads its own trees, and every range it emits carries a SHA-256 the
/// applier checks). Each content the base lacks as a whole file is chunked the same way: a chunk found anywhere in the
/// base becomes a copy of that range (consecutive ranges of one base file merge), and the chunks between are
/// compressed with zstd against a reference window of the base (the window after the last copied range, or the same
/// path's old file around the same offset), so a file edited in a few places costs a few hundred bytes per edit.
/// Identical frames (same output, same reference) are stored once. Memory is bounded by the segment sizes of
/// <see cref="DeltaLimits"/>, whatever the file sizes.
/// </summary>
/// <param name="fromDir">The base tree's directory.</param>
/// <param name="baseTree">The base tree, scanned.</param>
/// <param name="level">zstd level of the frames.</param>
/// <param name="large">
/// An update of more than <see cref="PatchBuilder.LargeUpdateBytes"/>: reference windows follow the length of each run
/// and incompressible runs keep their level-1 frame, so the build time follows the changed bytes (docs/decisions.md).
/// Smaller updates give every run the whole reference budget and the requested level: the smallest patch.
/// </param>
internal sealed class DeltaBuilder(string fromDir, ScannedTree baseTree, int level, bool large)
{
    /// <summary>Longest run of new bytes compressed as one frame (half the applier's limit: a frame of it fits well).</summary>
    public const int MaxRun = 8 * 1024 * 1024;

    /// <summary>Frames of one file compressed at once (<see cref="RecipeWriter"/>): one per core.</summary>
    private static readonly int MaxPending = Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// In a large update, reference bytes per byte of a run, and the least reference a run gets: an edit of a few KiB inside a large file
    /// is compressed against a window around the bytes it replaced, not 32 MiB of the file. Loading a reference costs
    /// about as much as compressing it at high levels (docs/decisions.md), so the window follows the run.
    /// </summary>
    private const int RefPerRunByte = 8;

    private const int MinRefLength = 1024 * 1024;

    /// <summary>
    /// In a large update, runs at least this long are first compressed at level 1: when that saves under 1/64 of the run (incompressible
    /// content, nothing like it in the reference), that frame is kept, since a higher level would spend tens of times
    /// longer to save about as little.
    /// </summary>
    private const int TrialMinLength = 64 * 1024;

    private readonly Dictionary<UInt128, (int File, long Offset, int Length)> _index = new();
    private readonly Dictionary<string, int> _basePath = baseTree.Files.Select((f, i) => (f.Path, i)).ToDictionary(x => x.Path, x => x.i, StringComparer.Ordinal);
    private long _reused, _delta, _deltaContent, _whole, _wholeContent;

    public DeltaStats Stats => new(Interlocked.Read(ref _reused), _delta, Interlocked.Read(ref _deltaContent), _whole, Interlocked.Read(ref _wholeContent));

    /// <summary>Indexes every chunk of the base, files in parallel; a chunk in several places keeps the first in base order.</summary>
    public void IndexBase(CancellationToken ct)
    {
        var perFile = new List<(UInt128, long, int)>[baseTree.Files.Count];
        Parallelism.ForEach(Enumerable.Range(0, baseTree.Files.Count), ct, i =>
        {
            var list = new List<(UInt128, long, int)>();
            if (baseTree.Files[i].Size > 0)
            {
                using var input = FileOps.Instance.OpenRead(PathRules.Join(fromDir, baseTree.Files[i].Path));
                Chunker.Split(input, (offset, chunk) => list.Add((XxHash128.HashToUInt128(chunk), offset, chunk.Length)), ct);
            }

            perFile[i] = list;
        });
        for (var i = 0; i < perFile.Length; i++)
        {
            foreach (var (hash, offset, length) in perFile[i]) _index.TryAdd(hash, (i, offset, length));
        }
    }

    private Dictionary<string, int>? _byName;

    /// <summary>Frames already in the payload, by output and references: identical frames are stored once.</summary>
    private readonly Dictionary<(string Output, string? Ref), (long Offset, long Length)> _placed = new();

    private static (string Output, string? Ref) FrameKey(string sha, IReadOnlyList<RefWindow> refs) =>
        (sha, refs.Count == 0 ? null : string.Join(",", refs.Select(r => r.Sha256)));

    /// <summary>
    /// Moves the frames of <paramref name="recipe"/> from <paramref name="frames"/> (where <see cref="Build"/> wrote them)
    /// to the end of <paramref name="payload"/>, each frame once across the whole patch, and returns the recipe with its
    /// payload offsets. Called in file order, so the payload is the same bytes whatever order the files were built in.
    /// </summary>
    public ContentRecipe Append(ContentRecipe recipe, Stream frames, Stream payload)
    {
        var ops = new List<DeltaOp>(recipe.Ops.Count);
        foreach (var op in recipe.Ops)
        {
            if (op.Kind != DeltaOpKind.Data)
            {
                ops.Add(op);
                continue;
            }

            var key = FrameKey(op.Sha256, op.Refs);
            if (!_placed.TryGetValue(key, out var placed))
            {
                var bytes = new byte[op.StoredLength];
                frames.Seek(op.PayloadOffset, SeekOrigin.Begin);
                frames.ReadExactly(bytes);
                placed = (payload.Position, bytes.Length);
                payload.Write(bytes);
                _placed[key] = placed;
                if (op.Refs.Count == 0) _whole += bytes.Length;
                else _delta += bytes.Length;
            }

            ops.Add(op with { PayloadOffset = placed.Offset, StoredLength = placed.Length });
        }

        return recipe with { Ops = ops };
    }

    /// <summary>
    /// The base file a new file most likely evolved from, for content no chunk of the base matches: the same path; else
    /// a file of the same name elsewhere (moved); else the file of the same extension closest in size (renamed). -1: none.
    /// </summary>
    private int Likely(ScannedFile file)
    {
        if (_basePath.TryGetValue(file.Path, out var same) && baseTree.Files[same].Size > 0) return same;
        LazyInitializer.EnsureInitialized(ref _byName, () =>
        {
            var byName = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < baseTree.Files.Count; i++)
            {
                if (baseTree.Files[i].Size > 0) byName.TryAdd(Path.GetFileName(baseTree.Files[i].Path), i);
            }

            return byName;
        });
        if (_byName.TryGetValue(Path.GetFileName(file.Path), out var moved)) return moved;
        var extension = Path.GetExtension(file.Path);
        var best = -1;
        for (var i = 0; i < baseTree.Files.Count; i++)
        {
            var b = baseTree.Files[i];
            if (b.Size == 0 || !string.Equals(Path.GetExtension(b.Path), extension, StringComparison.Ordinal)) continue;
            if (best < 0 || Math.Abs(b.Size - file.Size) < Math.Abs(baseTree.Files[best].Size - file.Size)) best = i;
        }

        return best;
    }

    /// <summary>Counts a target file whose whole content is in the base (placed from there by the applier).</summary>
    public void CountReused(long size) => _reused += size;

    /// <summary>
    /// The recipe of <paramref name="file"/> (read from <paramref name="source"/>), its frames written to
    /// <paramref name="frames"/> (identical ones once). Safe to call for several files at once; <see cref="Append"/>
    /// then moves each file's frames into the payload, in file order.
    /// </summary>
    public ContentRecipe Build(ScannedFile file, string source, Stream frames, CancellationToken ct)
    {
        var recipe = new RecipeWriter(this, Likely(file), frames);
        using var input = FileOps.Instance.OpenRead(source);
        Chunker.Split(input, (offset, chunk) =>
        {
            if (_index.TryGetValue(XxHash128.HashToUInt128(chunk), out var at) && at.Length == chunk.Length) recipe.Found(at.File, at.Offset, chunk);
            else recipe.New(offset, chunk);
        }, ct);
        return new ContentRecipe { Sha256 = file.Sha256, Size = file.Size, Ops = recipe.Finish() };
    }

    /// <summary>
    /// The ops of one file's recipe, built chunk by chunk in file order: chunks found in the base grow a copy of a base
    /// range, and the new bytes between them gather into a run that becomes one compressed frame.
    /// </summary>
    /// <param name="owner">The builder whose base index, counters and compression level the recipe uses.</param>
    /// <param name="samePath">The base file the new file most likely evolved from (<see cref="Likely"/>), or -1.</param>
    /// <param name="payload">Where the frames are written, each identical frame once.</param>
    private sealed class RecipeWriter(DeltaBuilder owner, int samePath, Stream payload)
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
        /// Queues the compression of one run of new bytes against reference windows of the base
        /// (<see cref="ReferencePoints"/>) unless an identical frame (same output, same references) is written or queued.
        /// Up to <see cref="MaxPending"/> frames of one file compress at once, so a single large file keeps every core busy;
        /// each holds its run and reference (at most <see cref="MaxRun"/> + <see cref="DeltaLimits.MaxRefLength"/> bytes).
        /// </summary>
        private DeltaOp Frame(ReadOnlySpan<byte> bytes, (int File, long Offset)? next)
        {
            var windows = owner.Windows(ReferencePoints(bytes.Length, next), bytes.Length);
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
        /// copied just after it (content moved in from another file precedes it there); the same path's old file at the
        /// same offset when neither exists.
        /// </summary>
        private List<(int File, long At)> ReferencePoints(int length, (int File, long Offset)? next)
        {
            var points = new List<(int File, long At)>();
            if (_lastCopy is { } p) points.Add((p.File, p.End + (length / 2)));
            if (next is { } n) points.Add((n.File, n.Offset - (length / 2)));
            if (points.Count == 0 && samePath >= 0) points.Add((samePath, _runStart + (length / 2)));
            return points;
        }
    }

    private string BasePath(int file) => baseTree.Files[file].Path;

    private byte[] Compress(byte[] reference, byte[] bytes)
    {
        if (large && bytes.Length >= TrialMinLength && level > 1)
        {
            var quick = ZstdPatch.Compress(reference, bytes, 1);
            if (quick.Length > bytes.Length - (bytes.Length / 64)) return quick;
        }

        return ZstdPatch.Compress(reference, bytes, level);
    }

    /// <summary>
    /// The reference windows centred on <paramref name="points"/>, sharing <see cref="DeltaLimits.MaxRefLength"/> (in a
    /// large update <see cref="RefPerRunByte"/> bytes per byte of the run, at least <see cref="MinRefLength"/>);
    /// windows of one file that overlap are merged.
    /// </summary>
    private List<(int File, long Start, long Length)> Windows(List<(int File, long At)> points, int runLength)
    {
        var total = large ? (int)Math.Clamp((long)runLength * RefPerRunByte, MinRefLength, DeltaLimits.MaxRefLength) : DeltaLimits.MaxRefLength;
        var budget = points.Count == 0 ? 0 : total / points.Count;
        var windows = new List<(int File, long Start, long Length)>();
        foreach (var (file, at) in points)
        {
            var size = baseTree.Files[file].Size;
            var length = Math.Min(size, budget);
            var start = Math.Clamp(at - (length / 2), 0, size - length);
            var same = windows.FindIndex(w => w.File == file);
            if (same >= 0)
            {
                // One window of the union when it fits the whole budget, else two.
                var union = (Start: Math.Min(windows[same].Start, start), End: Math.Max(windows[same].Start + windows[same].Length, start + length));
                if (union.End - union.Start <= total)
                {
                    windows[same] = (file, union.Start, union.End - union.Start);
                    continue;
                }
            }

            windows.Add((file, start, length));
        }

        return windows;
    }

    /// <summary>The bytes of <paramref name="windows"/> read from the base, one after the other, and their descriptions.</summary>
    private (byte[] Reference, List<RefWindow> Refs) ReadReference(List<(int File, long Start, long Length)> windows)
    {
        var reference = new byte[windows.Sum(w => w.Length)];
        var refs = new List<RefWindow>(windows.Count);
        var filled = 0;
        foreach (var (file, start, length) in windows)
        {
            var span = reference.AsSpan(filled, (int)length);
            using (var input = FileOps.Instance.OpenRead(PathRules.Join(fromDir, baseTree.Files[file].Path)))
            {
                input.Seek(start, SeekOrigin.Begin);
                input.ReadExactly(span);
            }

            refs.Add(new RefWindow(baseTree.Files[file].Path, start, length, Convert.ToHexStringLower(SHA256.HashData(span))));
            filled += (int)length;
        }

        return (reference, refs);
    }
}
