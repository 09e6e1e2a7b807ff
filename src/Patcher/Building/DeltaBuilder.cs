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
/// <param name="EarlierContentBytes">Of <paramref name="DeltaBytes"/>, those of frames with a reference window in a content the patch rebuilds earlier.</param>
internal sealed record DeltaStats(long ReusedBytes, long DeltaBytes, long DeltaContentBytes, long WholeBytes, long WholeContentBytes, long EarlierContentBytes = 0)
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
/// A frame's reference also takes windows of other base files and (once <see cref="IndexContents"/> has run) of contents
/// the patch rebuilds earlier where the run's bytes are found in small chunks, so an edit repeated in several builds of
/// one bundle ships once.
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
internal sealed partial class DeltaBuilder(string fromDir, ScannedTree baseTree, int level, bool large)
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

    public DeltaStats Stats => new(Interlocked.Read(ref _reused), _delta, Interlocked.Read(ref _deltaContent), _whole, Interlocked.Read(ref _wholeContent), _earlierContent);

    /// <summary>
    /// Indexes every chunk of the base, files in parallel; a chunk in several places keeps the first in base order.
    /// Unless the update is large, the base's small chunks are indexed too (<see cref="WhereFound"/>), before any content's.
    /// </summary>
    public void IndexBase(CancellationToken ct)
    {
        var perFile = new List<(UInt128, long, int)>[baseTree.Files.Count];
        var finePerFile = new List<(ulong Hash, long Offset)>[baseTree.Files.Count];
        Parallelism.ForEach(Enumerable.Range(0, baseTree.Files.Count), ct, i =>
        {
            var list = new List<(UInt128, long, int)>();
            var path = PathRules.Join(fromDir, baseTree.Files[i].Path);
            if (baseTree.Files[i].Size > 0)
            {
                using var input = FileOps.Instance.OpenRead(path);
                Chunker.Split(input, (offset, chunk) => list.Add((XxHash128.HashToUInt128(chunk), offset, chunk.Length)), ct);
            }

            perFile[i] = list;
            finePerFile[i] = large || baseTree.Files[i].Size == 0 ? [] : FineChunks(path, ct);
        });
        for (var i = 0; i < perFile.Length; i++)
        {
            foreach (var (hash, offset, length) in perFile[i]) _index.TryAdd(hash, (i, offset, length));
            foreach (var (hash, offset) in finePerFile[i]) _fine.TryAdd(hash, (i, offset));
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
                if (op.Refs.Any(r => r.Content is not null)) _earlierContent += bytes.Length;
            }

            ops.Add(op with { PayloadOffset = placed.Offset, StoredLength = placed.Length });
        }

        return recipe with { Ops = ops };
    }

    /// <summary>
    /// The source (<see cref="SourceSize"/>) a new file most likely evolved from, for content no chunk of the base matches:
    /// the same path; else a base file of the same name elsewhere (moved); else an earlier content of the same name
    /// (another build of it); else the base file or earlier content (for files of at least
    /// <see cref="MinGuessedContentSize"/>) of the same extension closest in size. -1: none.
    /// </summary>
    private int Likely(ScannedFile file, int content)
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
        if (_contentByName.TryGetValue(Path.GetFileName(file.Path), out var build) && build < content) return ContentSource(build);
        var extension = Path.GetExtension(file.Path);
        var best = file.Size >= MinGuessedContentSize ? ClosestEarlierContent(extension, file.Size, content) : -1;
        for (var i = 0; i < baseTree.Files.Count; i++)
        {
            var b = baseTree.Files[i];
            if (b.Size == 0 || !string.Equals(Path.GetExtension(b.Path), extension, StringComparison.Ordinal)) continue;
            if (best < 0 || Math.Abs(b.Size - file.Size) < Math.Abs(SourceSize(best) - file.Size)) best = i;
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
        var content = _contentOrder.GetValueOrDefault(file.Sha256);
        var recipe = new RecipeWriter(this, content, Likely(file, content), frames);
        using var input = FileOps.Instance.OpenRead(source);
        Chunker.Split(input, (offset, chunk) =>
        {
            if (_index.TryGetValue(XxHash128.HashToUInt128(chunk), out var at) && at.Length == chunk.Length) recipe.Found(at.File, at.Offset, chunk);
            else recipe.New(offset, chunk);
        }, ct);
        return new ContentRecipe { Sha256 = file.Sha256, Size = file.Size, Ops = recipe.Finish() };
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
    /// The reference windows of a run: first the windows centred on <paramref name="points"/>, then the windows of earlier
    /// contents the run's bytes were found in (<paramref name="found"/>, each cut to an equal share of the budget), closest
    /// to the run since they hold the newest bytes. The budget is <see cref="DeltaLimits.MaxRefLength"/> (in a large
    /// update <see cref="RefPerRunByte"/> bytes per byte of the run, at least <see cref="MinRefLength"/>); the points share
    /// what the found windows leave, and windows of one source that overlap are merged.
    /// </summary>
    private List<(int File, long Start, long Length)> Windows(List<(int File, long At)> points, List<(int File, long Start, long Length)> found, int runLength)
    {
        var total = large ? (int)Math.Clamp((long)runLength * RefPerRunByte, MinRefLength, DeltaLimits.MaxRefLength) : DeltaLimits.MaxRefLength;
        var share = total / Math.Max(1, points.Count + found.Count);
        var fixedWindows = found.Select(f => Centred(f.File, f.Start + (f.Length / 2), Math.Min(f.Length, share))).ToList();
        var room = total - fixedWindows.Sum(w => w.Length);
        var budget = points.Count == 0 ? 0 : room / points.Count;
        var windows = new List<(int File, long Start, long Length)>();
        foreach (var (file, at) in points)
        {
            var (_, start, length) = Centred(file, at, budget);
            var same = windows.FindIndex(w => w.File == file);
            if (same >= 0)
            {
                // One window of the union when it fits what the points share, else two.
                var union = (Start: Math.Min(windows[same].Start, start), End: Math.Max(windows[same].Start + windows[same].Length, start + length));
                if (union.End - union.Start <= room)
                {
                    windows[same] = (file, union.Start, union.End - union.Start);
                    continue;
                }
            }

            windows.Add((file, start, length));
        }

        windows.AddRange(fixedWindows.Where(f => !windows.Any(w => w.File == f.File && w.Start <= f.Start && f.Start + f.Length <= w.Start + w.Length)));
        return windows;
    }

    /// <summary>A window of at most <paramref name="length"/> bytes of <paramref name="source"/> centred on <paramref name="at"/>, inside it.</summary>
    private (int File, long Start, long Length) Centred(int source, long at, long length)
    {
        var size = SourceSize(source);
        length = Math.Min(size, length);
        return (source, Math.Clamp(at - (length / 2), 0, size - length), length);
    }

    /// <summary>The bytes of <paramref name="windows"/> read from their sources, one after the other, and their descriptions.</summary>
    private (byte[] Reference, List<RefWindow> Refs) ReadReference(List<(int File, long Start, long Length)> windows)
    {
        var reference = new byte[windows.Sum(w => w.Length)];
        var refs = new List<RefWindow>(windows.Count);
        var filled = 0;
        foreach (var (source, start, length) in windows)
        {
            var span = reference.AsSpan(filled, (int)length);
            using (var input = FileOps.Instance.OpenRead(SourceFile(source)))
            {
                input.Seek(start, SeekOrigin.Begin);
                input.ReadExactly(span);
            }

            refs.Add(Window(source, start, length, Convert.ToHexStringLower(SHA256.HashData(span))));
            filled += (int)length;
        }

        return (reference, refs);
    }
}
