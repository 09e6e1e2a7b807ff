using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace PatchBench;

/// <summary>One file of a synthetic tree. Its content is a pure function of <see cref="Seed"/> and <see cref="Size"/>.</summary>
internal sealed record FileSpec(string Path, long Size, ulong Seed, bool Executable);

/// <summary>An old version, the next version, and what differs between them.</summary>
internal sealed class TreePair
{
    public required string Name { get; init; }
    public required List<FileSpec> Old { get; init; }
    public required List<FileSpec> New { get; init; }

    /// <summary>Files of the new version whose content the old one lacks (modified or added): what a patch must write.</summary>
    public List<FileSpec> Written => New.Where(f => !_oldByPath.TryGetValue(f.Path, out var o) || o != f).ToList();

    /// <summary>Paths of the old version that the new one changes or removes.</summary>
    public List<string> ChangedOrRemovedOld => Old.Where(o => !_newByPath.TryGetValue(o.Path, out var n) || n != o).Select(o => o.Path).ToList();

    public List<string> Removed => Old.Where(o => !_newByPath.ContainsKey(o.Path)).Select(o => o.Path).ToList();

    public long OldBytes => Old.Sum(f => f.Size);
    public long NewBytes => New.Sum(f => f.Size);
    public long WrittenBytes => Written.Sum(f => f.Size);

    private Dictionary<string, FileSpec> _oldByPath = [];
    private Dictionary<string, FileSpec> _newByPath = [];

    public TreePair Index()
    {
        _oldByPath = Old.ToDictionary(f => f.Path, StringComparer.Ordinal);
        _newByPath = New.ToDictionary(f => f.Path, StringComparer.Ordinal);
        return this;
    }

    public bool IsUnchanged(FileSpec f) => _oldByPath.TryGetValue(f.Path, out var o) && o == f;
}

/// <summary>Deterministic synthetic game trees.</summary>
internal static class TreeGen
{
    /// <summary>
    /// A game-like tree: a few large pack files holding 40% of the bytes, the rest log-normal (sigma 1.5), a few
    /// empty files and executables. The next version changes about <paramref name="changeFraction"/> of the bytes:
    /// one pack, many small files, 1% of files added and 1% removed.
    /// </summary>
    public static TreePair Game(string name, int files, long totalBytes, double changeFraction, ulong seed)
    {
        var rng = new Rng(seed);
        var old = OldTree(files, totalBytes, rng);
        var packs = old.Where(f => f.Path.StartsWith("packs/", StringComparison.Ordinal)).ToList();
        var small = old.Where(f => !f.Path.StartsWith("packs/", StringComparison.Ordinal)).ToList();
        var target = (long)(totalBytes * changeFraction);
        var avgSmall = small.Count == 0 ? 0 : small.Sum(f => f.Size) / small.Count;

        var next = old.ToDictionary(f => f.Path, StringComparer.Ordinal);
        long changed = 0;

        // 1% removed.
        var order = Enumerable.Range(0, small.Count).ToList();
        rng.Shuffle(order);
        var removeCount = Math.Max(1, small.Count / 100);
        foreach (var i in order.Take(removeCount)) next.Remove(small[i].Path);

        // 1% added, log-normal around the average small size, in a new directory and in existing ones.
        var addCount = Math.Max(1, files / 100);
        for (var k = 0; k < addCount; k++)
        {
            var size = (long)(avgSmall * Math.Exp((1.5 * rng.NextGaussian()) - 1.125));
            var path = k % 2 == 0 ? $"assets/new/n{k:D6}.dat" : $"{PathParent(small[rng.NextInt(small.Count)].Path)}/added{k:D6}.dat";
            next[path] = new FileSpec(path, size, rng.Next(), false);
            changed += size;
        }

        // One pack, when it fits in half the budget.
        var pack = packs.OrderBy(p => p.Size).FirstOrDefault();
        if (pack is not null && pack.Size <= (target - changed) / 2)
        {
            next[pack.Path] = Modified(pack, rng);
            changed += next[pack.Path].Size;
        }

        // Small files until the budget is reached.
        foreach (var i in order.Skip(removeCount))
        {
            if (changed >= target) break;
            var f = small[i];
            var m = Modified(f, rng);
            next[f.Path] = m;
            changed += m.Size;
        }

        return new TreePair { Name = name, Old = old, New = next.Values.OrderBy(f => f.Path, StringComparer.Ordinal).ToList() }.Index();
    }

    /// <summary>
    /// For the scaling check: <paramref name="files"/> files of <paramref name="totalBytes"/>, of which exactly
    /// <paramref name="changedFiles"/> small files are rewritten to hold <paramref name="changedBytes"/> together.
    /// Only the size of the install varies between pairs with the same changed files and bytes.
    /// </summary>
    public static TreePair Scaling(string name, int files, long totalBytes, int changedFiles, long changedBytes, ulong seed)
    {
        var rng = new Rng(seed);
        var old = OldTree(files, totalBytes, rng);
        var small = old.Where(f => !f.Path.StartsWith("packs/", StringComparison.Ordinal)).ToList();
        var order = Enumerable.Range(0, small.Count).ToList();
        rng.Shuffle(order);
        var next = old.ToDictionary(f => f.Path, StringComparer.Ordinal);
        foreach (var i in order.Take(changedFiles))
        {
            var f = small[i];
            next[f.Path] = f with { Size = changedBytes / changedFiles, Seed = rng.Next() };
        }

        return new TreePair { Name = name, Old = old, New = next.Values.OrderBy(f => f.Path, StringComparer.Ordinal).ToList() }.Index();
    }

    /// <summary>A tiny tree; the next version adds one file of <paramref name="bigBytes"/>.</summary>
    public static TreePair BigFile(long bigBytes, ulong seed)
    {
        var rng = new Rng(seed);
        var old = Enumerable.Range(0, 8).Select(i => new FileSpec($"data/f{i}.dat", 64 << 10, rng.Next(), false)).ToList();
        var next = old.Append(new FileSpec("packs/huge.pak", bigBytes, rng.Next(), false)).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        return new TreePair { Name = "big", Old = old, New = next }.Index();
    }

    private static List<FileSpec> OldTree(int files, long totalBytes, Rng rng)
    {
        var packCount = Math.Min(Math.Clamp(files / 1000, 2, 16), Math.Max(0, files / 4));
        var packBytes = (long)(totalBytes * 0.4);
        var smallCount = files - packCount;
        var result = new List<FileSpec>(files);

        var packWeights = Enumerable.Range(0, packCount).Select(_ => Math.Exp(0.5 * rng.NextGaussian())).ToList();
        var packSum = packWeights.Sum();
        for (var j = 0; j < packCount; j++)
            result.Add(new FileSpec($"packs/pak{j:D2}.pak", (long)(packBytes * packWeights[j] / packSum), rng.Next(), false));

        var smallBytes = totalBytes - result.Sum(f => f.Size);
        var raw = new double[smallCount];
        for (var i = 0; i < smallCount; i++) raw[i] = i % 200 == 7 ? 0 : Math.Exp(1.5 * rng.NextGaussian());
        var scale = smallBytes / Math.Max(1e-9, raw.Sum());
        string[] exts = ["dat", "tex", "snd", "lua", "mdl"];
        for (var i = 0; i < smallCount; i++)
        {
            var exec = i % 500 == 3;
            var dir = i / 50;
            var path = exec ? $"bin/lib{i:D6}.so" : $"assets/g{dir / 40:D3}/d{dir % 40:D2}/f{i:D6}.{exts[i % exts.Length]}";
            result.Add(new FileSpec(path, (long)(raw[i] * scale), rng.Next(), exec));
        }

        return result;
    }

    private static FileSpec Modified(FileSpec f, Rng rng)
    {
        var size = f.Size == 0 ? 0 : Math.Max(1, (long)(f.Size * (0.95 + (0.1 * rng.NextDouble()))));
        return f with { Size = size, Seed = rng.Next() };
    }

    private static string PathParent(string path) => path[..path.LastIndexOf('/')];
}

/// <summary>Writes trees to disk and makes install copies.</summary>
internal static class TreeWriter
{
    private const int Chunk = 1 << 20;

    /// <summary>Writes <paramref name="files"/> under <paramref name="root"/>, using two threads (large files first).</summary>
    public static void Write(string root, IEnumerable<FileSpec> files) =>
        Write(root, files.Select(f => (f, (string?)null)));

    /// <summary>
    /// Writes the new version: files unchanged from the old version are hard links to the old tree's files
    /// (same inode, so same size and mtime: rsync's quick check skips them, as it would on a real update).
    /// </summary>
    public static void WriteNext(string oldRoot, string newRoot, TreePair pair) =>
        Write(newRoot, pair.New.Select(f => (f, pair.IsUnchanged(f) ? Path.Join(oldRoot, f.Path) : null)));

    private static void Write(string root, IEnumerable<(FileSpec File, string? LinkFrom)> items)
    {
        var list = items.ToList();
        foreach (var dir in list.Select(i => Path.GetDirectoryName(Path.Join(root, i.File.Path))!).Distinct())
            Directory.CreateDirectory(dir);
        Parallel.ForEach(list.OrderByDescending(i => i.LinkFrom is null ? i.File.Size : -1), new ParallelOptions { MaxDegreeOfParallelism = 2 }, item =>
        {
            var path = Path.Join(root, item.File.Path);
            if (item.LinkFrom is not null)
            {
                if (Native.link(item.LinkFrom, path) != 0)
                    throw new IOException($"link {item.LinkFrom} -> {path} failed: errno {Marshal.GetLastPInvokeError()}");
                return;
            }

            WriteContent(path, item.File);
        });
    }

    public static void WriteContent(string path, FileSpec f)
    {
        var rng = new Rng(f.Seed ^ (ulong)f.Size);
        var buffer = ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            using (var s = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 0))
            {
                for (long left = f.Size; left > 0;)
                {
                    var n = (int)Math.Min(Chunk, left);
                    rng.Fill(buffer.AsSpan(0, n));
                    s.Write(buffer, 0, n);
                    left -= n;
                }
            }

            if (f.Executable)
                File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// An install of the old version at <paramref name="dest"/>: hard links to the pristine old tree for files the
    /// update keeps (no update strategy writes into those), private copies for files it changes or removes (so
    /// replacing or deleting them really frees and rewrites blocks, as on a real install).
    /// </summary>
    public static void CloneInstall(string oldRoot, string dest, TreePair pair)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
        var r = Proc.Run("cp", ["-al", oldRoot, dest]);
        if (r.ExitCode != 0) throw new InvalidOperationException($"cp -al failed: {r.Err}");
        foreach (var rel in pair.ChangedOrRemovedOld)
        {
            var path = Path.Join(dest, rel);
            File.Delete(path);
            File.Copy(Path.Join(oldRoot, rel), path);
        }
    }

    /// <summary>Cheap structural check: exactly the new version's paths with their sizes (content is hashed by Verify).</summary>
    public static string? Compare(string root, IReadOnlyList<FileSpec> expected, Func<string, bool>? ignore = null)
    {
        var want = expected.ToDictionary(f => f.Path, f => f.Size, StringComparer.Ordinal);
        var seen = 0;
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (ignore?.Invoke(rel) == true) continue;
            if (!want.TryGetValue(rel, out var size)) return $"unexpected file {rel}";
            var len = new FileInfo(file).Length;
            if (len != size) return $"{rel} is {len} bytes, expected {size}";
            seen++;
        }

        return seen == want.Count ? null : $"{want.Count - seen} files missing";
    }

    /// <summary>
    /// Makes <paramref name="dir"/> and marks it a top of a directory hierarchy (<c>chattr +T</c>, ext2/3/4), so that
    /// ext4 places each directory made in it in a block group of its own choosing with free inodes, as it does for
    /// directories at the root of the file system, rather than near the parent. Every timed run gets its own
    /// directory in <paramref name="dir"/>, which ext4 puts in a group with above-average free inodes and few
    /// directories; usually not one where the bench freed inodes seconds earlier (a group it just emptied can be chosen).
    /// On ext4 without a journal each such inode is skipped, one inode-table lookup each, for a minute after it was
    /// freed (six while its inode-table block is dirty), and the bench frees thousands per run (docs/benchmarks.md,
    /// sixth round). Returns false where the flag is not supported; the runs then share the parent's group.
    /// </summary>
    public static bool MakeSpreadingDirectory(string dir)
    {
        Directory.CreateDirectory(dir);
        return Proc.Exists("chattr") && Proc.Run("chattr", ["+T", dir]).ExitCode == 0;
    }

    public static void DeleteTree(string path)
    {
        if (!Directory.Exists(path)) return;
        // rm is faster than Directory.Delete for 100k files, and handles read-only modes.
        var r = Proc.Run("rm", ["-rf", "--one-file-system", path]);
        if (r.ExitCode != 0) throw new InvalidOperationException($"rm -rf {path} failed: {r.Err}");
        Debug.Assert(!Directory.Exists(path));
    }
}

internal static class Native
{
    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Interoperability", "SYSLIB1054", Justification = "bench tool; DllImport needs no unsafe code")]
    public static extern int link(string existing, string newPath);
}
