using System.IO.Hashing;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Building;

/// <summary>
/// Reference windows wherever a run's bytes are found: in base files other than those the copies point to, and in
/// contents the patch rebuilds earlier. A reference source is a number: below the base's file count a base file, above
/// it the content of that rank in recipe order. Building content i reads only the bytes of contents j &lt; i, which are
/// files of the new tree: recipes still build in parallel, and which windows a run gets depends only on its bytes and
/// the indexes, never on scheduling.
/// </summary>
internal sealed partial class DeltaBuilder
{
    /// <summary>Bytes of a run that must be found in a source (in small chunks) for a window of it to pay for its manifest entry.</summary>
    private const int MinFoundMatch = 1024;

    /// <summary>
    /// Smallest new file whose likely source may be an earlier content of another name: below it a guessed window
    /// saves less than its manifest entry costs (and the small files of a full package keep their plain frames).
    /// </summary>
    private const int MinGuessedContentSize = 4 * 1024;

    /// <summary>Bytes a content window extends beyond where the run's matched bytes place it, for the edits around them.</summary>
    private const int ContentSlack = 8 * 1024;

    /// <summary>The contents the patch rebuilds, in recipe order; empty until <see cref="IndexContents"/>.</summary>
    private IReadOnlyList<ScannedFile> _contents = [];
    private string _toDir = "";
    private readonly Dictionary<string, int> _contentOrder = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _contentByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(long Size, int Content)>> _contentBySize = new(StringComparer.Ordinal);

    /// <summary>
    /// Small chunks (<see cref="Chunker.Fine"/>) of the base (unless the update is large) and of every content to
    /// rebuild, by XxHash3: the first source holding each (base files in base order, then contents in recipe order) and
    /// its offset there. A 64-bit hash is enough: a collision only misplaces a window, and every window carries the
    /// SHA-256 of its bytes.
    /// </summary>
    private readonly Dictionary<ulong, (int Source, long Offset)> _fine = new();
    private long _earlierContent;

    /// <summary>
    /// Indexes <paramref name="contents"/> (the files of <paramref name="toDir"/> to rebuild, in recipe order), files in
    /// parallel, so that later contents can reference earlier ones. Called after <see cref="IndexBase"/>.
    /// </summary>
    public void IndexContents(string toDir, IReadOnlyList<ScannedFile> contents, CancellationToken ct)
    {
        _toDir = toDir;
        _contents = contents;
        var perFile = new List<(ulong Hash, long Offset)>[contents.Count];
        Parallelism.ForEach(Enumerable.Range(0, contents.Count), ct, i => perFile[i] = FineChunks(PathRules.Join(toDir, contents[i].Path), ct));
        for (var i = 0; i < contents.Count; i++)
        {
            _contentOrder.TryAdd(contents[i].Sha256, i);
            _contentByName.TryAdd(Path.GetFileName(contents[i].Path), i);
            var extension = Path.GetExtension(contents[i].Path);
            if (!_contentBySize.TryGetValue(extension, out var sized)) _contentBySize[extension] = sized = [];
            sized.Add((contents[i].Size, i));
            foreach (var (hash, offset) in perFile[i]) _fine.TryAdd(hash, (ContentSource(i), offset));
        }

        foreach (var sized in _contentBySize.Values) sized.Sort();
    }

    private static List<(ulong Hash, long Offset)> FineChunks(string path, CancellationToken ct)
    {
        var list = new List<(ulong, long)>();
        using var input = FileOps.Instance.OpenRead(path);
        Chunker.Split(input, Chunker.Fine, (offset, chunk) => list.Add((XxHash3.HashToUInt64(chunk), offset)), ct);
        return list;
    }

    /// <summary>The hashes of the small chunks of <paramref name="windows"/>' bytes: what a reference of them already holds.</summary>
    private HashSet<ulong> FineHashes(List<(int File, long Start, long Length)> windows)
    {
        var hashes = new HashSet<ulong>();
        if (_fine.Count == 0) return hashes;
        foreach (var (source, start, length) in windows)
        {
            using var input = FileOps.Instance.OpenRead(SourceFile(source));
            input.Seek(start, SeekOrigin.Begin);
            Chunker.Split(input, Chunker.Fine, (_, chunk) => hashes.Add(XxHash3.HashToUInt64(chunk)), CancellationToken.None, length);
        }

        return hashes;
    }

    /// <summary>
    /// The sources holding most of the bytes of <paramref name="run"/> that <paramref name="covered"/> lacks (base files,
    /// and contents ranked before <paramref name="content"/>), at most <paramref name="most"/>, each as the window where
    /// the run would lie along its matches there (plus <see cref="ContentSlack"/>); only sources where at least
    /// <see cref="MinFoundMatch"/> such bytes matched. Bytes the windows around the copies already hold are not counted:
    /// a window of another file holding them too would cost its manifest entry for nothing.
    /// </summary>
    private List<(int File, long Start, long Length)> WhereFound(int content, ReadOnlySpan<byte> run, int most, HashSet<ulong> covered)
    {
        if (_fine.Count == 0) return [];
        var found = new Dictionary<int, (long Matched, long Start, long End)>();
        for (var pos = 0; pos < run.Length;)
        {
            var n = Chunker.Cut(run[pos..], Chunker.Fine);
            var hash = XxHash3.HashToUInt64(run.Slice(pos, n));
            if (!covered.Contains(hash) && _fine.TryGetValue(hash, out var at) && at.Source < ContentSource(content))
            {
                var (start, end) = (at.Offset - pos, at.Offset - pos + run.Length);
                found[at.Source] = found.TryGetValue(at.Source, out var f)
                    ? (f.Matched + n, Math.Min(f.Start, start), Math.Max(f.End, end))
                    : (n, start, end);
            }

            pos += n;
        }

        return found.Where(f => f.Value.Matched >= MinFoundMatch)
            .OrderByDescending(f => f.Value.Matched).ThenBy(f => f.Key)
            .Take(most)
            .Select(f =>
            {
                var start = Math.Max(0, f.Value.Start - ContentSlack);
                var end = Math.Min(SourceSize(f.Key), f.Value.End + ContentSlack);
                return (f.Key, start, end - start);
            })
            .ToList();
    }

    /// <summary>The earlier content (rank below <paramref name="content"/>) with extension <paramref name="extension"/> closest in size to <paramref name="size"/>, as a source; -1: none.</summary>
    private int ClosestEarlierContent(string extension, long size, int content)
    {
        if (!_contentBySize.TryGetValue(extension, out var sized)) return -1;
        var at = sized.BinarySearch((size, int.MinValue));
        if (at < 0) at = ~at;
        // Walk outwards from where the size would sort, both ways at once, to the nearest earlier content.
        for (int below = at - 1, above = at; below >= 0 || above < sized.Count;)
        {
            var takeAbove = above < sized.Count && (below < 0 || sized[above].Size - size <= size - sized[below].Size);
            var (_, candidate) = takeAbove ? sized[above++] : sized[below--];
            if (candidate < content) return ContentSource(candidate);
        }

        return -1;
    }

    private int ContentSource(int content) => baseTree.Files.Count + content;

    private long SourceSize(int source) => source < baseTree.Files.Count ? baseTree.Files[source].Size : _contents[source - baseTree.Files.Count].Size;

    private string SourceFile(int source) => source < baseTree.Files.Count
        ? PathRules.Join(fromDir, baseTree.Files[source].Path)
        : PathRules.Join(_toDir, _contents[source - baseTree.Files.Count].Path);

    private RefWindow Window(int source, long start, long length, string sha256) => source < baseTree.Files.Count
        ? new RefWindow(baseTree.Files[source].Path, start, length, sha256)
        : RefWindow.InContent(_contents[source - baseTree.Files.Count].Sha256, start, length, sha256);
}
