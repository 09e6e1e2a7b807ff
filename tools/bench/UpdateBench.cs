using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Patching;
using Patching.Tests.TestHelpers;

namespace PatchBench;

/// <summary>
/// The update checks (<c>--update</c>): bytes an update downloads from a release store, before (raw pieces, as a store
/// without indexes serves them) and after (zstd frames, deltas), on the sample fixtures and on a series of four versions
/// (one step, three versions behind); and the time of an update over loopback HTTP against fetching the same objects
/// with <c>curl</c> plus the same update from the store as a local directory. Times are medians of alternating runs.
/// </summary>
internal sealed partial class Bench
{
    private const string UpProduct = "bench-game";
    private readonly List<string> _upRows = [];

    private void UpdateRun()
    {
        PreparePatchTool();
        var dir = Path.Join(o.Work, "update");
        Directory.CreateDirectory(dir);
        UpdateBytesSample(dir);
        UpdateSeries(dir);

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### Updates from a store ({o.Mode}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tools/bench -- --update{(o.Quick ? " --quick" : "")} --up-total-mb {o.UpTotalMb.ToString(CultureInfo.InvariantCulture)} --runs {o.Runs}`");
        sb.AppendLine();
        foreach (var (k, v) in _machine) sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        sb.AppendLine();
        sb.AppendLine("| case | before: raw pieces | after: zstd pieces | after: route taken | full version (raw / zstd) | bound |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var row in _upRows) sb.AppendLine(row);
        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
    }

    private void Publish(string store, string tree, string version, string? deltaFrom, string? channel = "stable")
    {
        var args = new List<string> { "publish", "--store", store, "--tree", tree, "--product", UpProduct, "--version", version, "--key", _keyFile, "--level", o.UpLevel.ToString(CultureInfo.InvariantCulture) };
        if (channel is not null) args.AddRange(["--channel", channel]);
        if (deltaFrom is not null) args.AddRange(["--delta-from", deltaFrom]);
        Proc.Check(_patchtool, args);
    }

    private UpdateOptions UpOptions(int parallel = 4) => new()
    {
        Apply = new PatcherOptions { TrustedKeys = [_pubPem] },
        MaxParallelDownloads = parallel,
    };

    private static UpdateResult UpdateFrom(string install, IUpdateSource source, UpdateOptions options)
    {
        Directory.CreateDirectory(install);
        var result = Patcher.UpdateAsync(install, source, options).GetAwaiter().GetResult();
        if (result.Status != UpdateStatus.Updated) throw new InvalidOperationException($"update of {install} ended {result.Status}");
        return result;
    }

    /// <summary>A copy of <paramref name="store"/> as a store written before frames: raw pieces under blobs/, no indexes, no deltas.</summary>
    private static string RawCopy(string store, string raw)
    {
        foreach (var manifestPath in Directory.EnumerateFiles(Path.Join(store, "versions"), "manifest.json", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(store, manifestPath);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(raw, rel))!);
            File.Copy(manifestPath, Path.Join(raw, rel), overwrite: true);
            File.Copy(Path.ChangeExtension(manifestPath, ".sig"), Path.Join(raw, Path.ChangeExtension(rel, ".sig")), overwrite: true);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
            foreach (var blob in doc.RootElement.GetProperty("blobs").EnumerateArray())
            {
                var sha = blob.GetProperty("sha256").GetString()!;
                var target = Path.Join(raw, "blobs", sha[..2], sha);
                if (File.Exists(target)) continue;
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using var decoder = new ZstdSharp.Decompressor();
                File.WriteAllBytes(target, decoder.Unwrap(File.ReadAllBytes(Path.Join(store, "pieces", sha[..2], sha + ".zst"))).ToArray());
            }
        }

        foreach (var ch in Directory.EnumerateFiles(Path.Join(store, "channels")))
        {
            Directory.CreateDirectory(Path.Join(raw, "channels"));
            File.Copy(ch, Path.Join(raw, "channels", Path.GetFileName(ch)), overwrite: true);
        }

        return raw;
    }

    /// <summary>The version's stored sizes from its index: raw total, frames total, and each piece's frame length.</summary>
    private static (long Raw, long Stored, Dictionary<string, long> Frames, HashSet<string> Pieces, Dictionary<string, long> Deltas) Index(string store, string version)
    {
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Join(store, "versions", version, "index.json")));
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Join(store, "versions", version, "manifest.json")));
        var frames = index.RootElement.GetProperty("pieces").EnumerateArray().ToDictionary(p => p.GetProperty("sha256").GetString()!, p => p.GetProperty("storedSize").GetInt64());
        var raw = manifest.RootElement.GetProperty("blobs").EnumerateArray().Sum(b => b.GetProperty("size").GetInt64());
        var deltas = index.RootElement.GetProperty("deltas").EnumerateArray().ToDictionary(d => d.GetProperty("from").GetString()!, d => d.GetProperty("bytes").GetInt64());
        return (raw, frames.Values.Sum(), frames, [.. frames.Keys], deltas);
    }

    private static string Pct(long part, long whole) => whole == 0 ? "n/a" : ((double)part / whole).ToString("P1", CultureInfo.InvariantCulture);

    // ---------------------------------------------------------------- sample fixtures

    private void UpdateBytesSample(string dir)
    {
        var repo = RepoRoot() ?? throw new InvalidOperationException("cannot find the repository for fixtures/sample");
        var v1 = Path.Join(repo, "fixtures", "sample", "v1");
        var v2 = Path.Join(repo, "fixtures", "sample", "v2");
        var s1 = Path.Join(dir, "sample-s1");
        var store = Path.Join(dir, "sample-store");
        Publish(s1, v1, "1.0.0", null);
        Proc.Check("cp", ["-al", s1, store]);
        Publish(store, v2, "2.0.0", "1.0.0");
        var raw = RawCopy(store, Path.Join(dir, "sample-raw"));
        var full1 = Index(store, "1.0.0");
        var full2 = Index(store, "2.0.0");

        var freshRaw = UpdateFrom(Path.Join(dir, "sample-i1/game"), new DirectorySource(RawCopy(s1, Path.Join(dir, "sample-s1-raw"))), UpOptions());
        var freshZstd = UpdateFrom(Path.Join(dir, "sample-i2/game"), new DirectorySource(s1), UpOptions());
        _upRows.Add($"| sample fixtures: fresh install of 1.0.0 | {Fmt.Bytes(freshRaw.BytesDownloaded)} | {Fmt.Bytes(freshZstd.BytesDownloaded)} | pieces: {Fmt.Bytes(freshZstd.BytesDownloaded)} ({Pct(freshZstd.BytesDownloaded, freshRaw.BytesDownloaded)} of before) | {Fmt.Bytes(full1.Raw)} / {Fmt.Bytes(full1.Stored)} | ≤ full: {YesNo(freshZstd.BytesDownloaded <= full1.Stored)} |");

        var stepRaw = UpdateFrom(Path.Join(dir, "sample-i1/game"), new DirectorySource(raw), UpOptions());
        var piecesCost = full2.Frames.Where(kv => !full1.Pieces.Contains(kv.Key)).Sum(kv => kv.Value);
        var step = UpdateFrom(Path.Join(dir, "sample-i2/game"), new DirectorySource(store), UpOptions());
        _upRows.Add($"| sample fixtures: 1.0.0 → 2.0.0 (delta stored) | {Fmt.Bytes(stepRaw.BytesDownloaded)} | {Fmt.Bytes(piecesCost)} | {(step.DeltaFrom is null ? "pieces" : "delta")}: {Fmt.Bytes(step.BytesDownloaded)} ({Pct(step.BytesDownloaded, stepRaw.BytesDownloaded)} of before) | {Fmt.Bytes(full2.Raw)} / {Fmt.Bytes(full2.Stored)} | ≤ full: {YesNo(step.BytesDownloaded <= full2.Stored)} |");
        Log($"sample: fresh {freshRaw.BytesDownloaded} -> {freshZstd.BytesDownloaded} bytes; step {stepRaw.BytesDownloaded} raw, {piecesCost} frames, {step.BytesDownloaded} taken ({step.DeltaFrom ?? "pieces"})");
    }

    // ---------------------------------------------------------------- a series of four versions

    /// <summary>Writes version 1 (text-like and random files) and three successors, each changing a few percent of the content.</summary>
    private List<string> WriteSeries(string dir)
    {
        var rng = new Rng(o.Seed + 31);
        var words = Vocabulary(rng);
        var trees = Enumerable.Range(1, 4).Select(v => Path.Join(dir, $"tree-{v}")).ToList();
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var total = o.UpTotalBytes;
        var count = Math.Max(8, (int)(total / (512 * 1024)));
        for (var i = 0; i < count; i++)
        {
            var size = (int)(total / count);
            if (i % 3 == 0)
            {
                var b = new byte[size];
                rng.Fill(b);
                files[$"data/pack{i:000}.bin"] = b;
            }
            else
            {
                files[$"text/file{i:000}.txt"] = Text(words, rng, size);
            }
        }

        for (var v = 0; v < 4; v++)
        {
            if (v > 0)
            {
                // About 4% of the files change per version: an insertion, an overwritten region, or a rewrite.
                var keys = files.Keys.Order(StringComparer.Ordinal).ToList();
                for (var n = 0; n < Math.Max(2, keys.Count / 25); n++)
                {
                    var key = keys[rng.NextInt(keys.Count)];
                    var bytes = files[key];
                    var at = rng.NextInt(bytes.Length);
                    var patch = key.EndsWith(".txt", StringComparison.Ordinal) ? Text(words, rng, 4096) : RandomBytes(rng, 4096);
                    files[key] = (n % 3) switch
                    {
                        0 => [.. bytes.AsSpan(0, at), .. patch, .. bytes.AsSpan(at)],
                        1 => Overwrite(bytes, patch, Math.Min(at, bytes.Length - patch.Length)),
                        _ => key.EndsWith(".txt", StringComparison.Ordinal) ? Text(words, rng, bytes.Length) : RandomBytes(rng, bytes.Length),
                    };
                }

                files[$"text/added-in-{v + 1}.txt"] = Text(words, rng, 64 * 1024);
            }

            foreach (var (path, bytes) in files)
            {
                var full = Path.Join(trees[v], path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                File.WriteAllBytes(full, bytes);
            }
        }

        return trees;
    }

    private static byte[] RandomBytes(Rng rng, int n)
    {
        var b = new byte[n];
        rng.Fill(b);
        return b;
    }

    private static byte[] Overwrite(byte[] bytes, byte[] patch, int at)
    {
        var copy = bytes.ToArray();
        patch.AsSpan(0, Math.Min(patch.Length, copy.Length)).CopyTo(copy.AsSpan(Math.Max(0, at)));
        return copy;
    }

    private void UpdateSeries(string dir)
    {
        var trees = WriteSeries(dir);
        var versions = new[] { "1.0.0", "2.0.0", "3.0.0", "4.0.0" };
        var s1 = Path.Join(dir, "series-s1");
        var s3 = Path.Join(dir, "series-s3");
        var store = Path.Join(dir, "series-store");
        var sw = Stopwatch.StartNew();
        // Stores whose channel points at 1.0.0 and 3.0.0 install the old versions; publish replaces files by rename, so
        // the hard-linked copies keep their channel.
        Publish(s1, trees[0], versions[0], null);
        Proc.Check("cp", ["-al", s1, store]);
        for (var v = 1; v < 3; v++) Publish(store, trees[v], versions[v], versions[v - 1]);
        Proc.Check("cp", ["-al", store, s3]);
        Publish(store, trees[3], versions[3], versions[2]);
        Log($"series: four versions of {Fmt.Bytes(o.UpTotalBytes)} published in {Fmt.Seconds(sw.Elapsed.TotalSeconds)} (zstd level {o.UpLevel})");
        var raw = RawCopy(store, Path.Join(dir, "series-raw"));
        var s1Raw = RawCopy(s1, Path.Join(dir, "series-s1-raw"));
        var s3Raw = RawCopy(s3, Path.Join(dir, "series-s3-raw"));
        var idx = versions.Select(v => Index(store, v)).ToList();
        var full = $"{Fmt.Bytes(idx[3].Raw)} / {Fmt.Bytes(idx[3].Stored)}";

        var freshRaw = UpdateFrom(Path.Join(dir, "fresh-raw/game"), new DirectorySource(raw), UpOptions());
        var fresh = UpdateFrom(Path.Join(dir, "fresh/game"), new DirectorySource(store), UpOptions());
        _upRows.Add($"| series: fresh install of 4.0.0 | {Fmt.Bytes(freshRaw.BytesDownloaded)} | {Fmt.Bytes(fresh.BytesDownloaded)} | pieces: {Fmt.Bytes(fresh.BytesDownloaded)} ({Pct(fresh.BytesDownloaded, freshRaw.BytesDownloaded)} of before) | {full} | ≤ full: {YesNo(fresh.BytesDownloaded <= idx[3].Stored)} |");

        // Three versions behind: the chain of three single-step deltas, or the pieces, whichever costs fewer bytes.
        UpdateFrom(Path.Join(dir, "behind-raw/game"), new DirectorySource(s1Raw), UpOptions());
        var behindRaw = UpdateFrom(Path.Join(dir, "behind-raw/game"), new DirectorySource(raw), UpOptions());
        UpdateFrom(Path.Join(dir, "behind/game"), new DirectorySource(s1), UpOptions());
        var behind = UpdateFrom(Path.Join(dir, "behind/game"), new DirectorySource(store), UpOptions());
        var sumDeltas = idx[1].Deltas["1.0.0"] + idx[2].Deltas["2.0.0"] + idx[3].Deltas["3.0.0"];
        var behindPieces = idx[3].Frames.Where(kv => !idx[0].Pieces.Contains(kv.Key)).Sum(kv => kv.Value);
        _upRows.Add($"| series: three versions behind, 1.0.0 → 4.0.0 | {Fmt.Bytes(behindRaw.BytesDownloaded)} | {Fmt.Bytes(behindPieces)} | {(behind.DeltaFrom is null ? "pieces" : "three deltas")}: {Fmt.Bytes(behind.BytesDownloaded)} ({Pct(behind.BytesDownloaded, behindRaw.BytesDownloaded)} of before); the three single-step deltas together: {Fmt.Bytes(sumDeltas)} (ratio {((double)behind.BytesDownloaded / sumDeltas).ToString("0.00", CultureInfo.InvariantCulture)}) | {full} | ≤ full: {YesNo(behind.BytesDownloaded <= idx[3].Stored)}; ≤ sum of steps: {YesNo(behind.BytesDownloaded <= sumDeltas)} |");

        // One step, with the delta stored.
        UpdateFrom(Path.Join(dir, "step-raw/game"), new DirectorySource(s3Raw), UpOptions());
        var stepRaw = UpdateFrom(Path.Join(dir, "step-raw/game"), new DirectorySource(raw), UpOptions());
        var stepPieces = idx[3].Frames.Where(kv => !idx[2].Pieces.Contains(kv.Key)).Sum(kv => kv.Value);
        UpdateFrom(Path.Join(dir, "step/game"), new DirectorySource(s3), UpOptions());
        var step = UpdateFrom(Path.Join(dir, "step/game"), new DirectorySource(store), UpOptions());
        _upRows.Add($"| series: one step, 3.0.0 → 4.0.0 (delta stored) | {Fmt.Bytes(stepRaw.BytesDownloaded)} | {Fmt.Bytes(stepPieces)} | {(step.DeltaFrom is null ? "pieces" : "delta")}: {Fmt.Bytes(step.BytesDownloaded)} ({Pct(step.BytesDownloaded, stepRaw.BytesDownloaded)} of before) | {full} | ≤ full: {YesNo(step.BytesDownloaded <= idx[3].Stored)} |");
        Log($"series: fresh {freshRaw.BytesDownloaded} -> {fresh.BytesDownloaded}; behind {behindRaw.BytesDownloaded} -> {behind.BytesDownloaded} (deltas {sumDeltas}); step {stepRaw.BytesDownloaded} -> {step.BytesDownloaded} ({step.DeltaFrom ?? "pieces"})");

        UpdateTiming(dir, store, s1, "three versions behind");
        UpdateTiming(dir, store, null, "fresh install");
    }

    // ---------------------------------------------------------------- time: HTTP against curl + local directory

    /// <summary>
    /// An update over loopback HTTP (the store served by a static-file server with Range), against the baseline of
    /// fetching the same objects with <c>curl</c> (as many connections) plus the same update from the store as a local
    /// directory. Each run starts from a fresh install of the version <paramref name="oldStore"/> points at, or from an
    /// empty folder; the contenders alternate.
    /// </summary>
    private void UpdateTiming(string dir, string store, string? oldStore, string what)
    {
        var http = new Samples();
        var curl = new Samples();
        var local = new Samples();
        var haveCurl = Proc.Exists("curl");
        if (!haveCurl) Log("curl is not installed (apt-get install curl): the curl baseline is skipped, only the local-directory update is timed");
        var server = StoreServer.StartAsync(store).GetAwaiter().GetResult();
        try
        {
            long bytes = 0;
            var route = "";
            for (var run = 0; run < o.Runs; run++)
            {
                var a = Path.Join(dir, $"t{run}-http/game");
                var b = Path.Join(dir, $"t{run}-local/game");
                Directory.CreateDirectory(a);
                Directory.CreateDirectory(b);
                if (oldStore is not null)
                {
                    UpdateFrom(a, new DirectorySource(oldStore), UpOptions());
                    UpdateFrom(b, new DirectorySource(oldStore), UpOptions());
                }

                Proc.SyncFs(dir);

                var before = server.RequestCounts.ToDictionary(kv => kv.Key, kv => kv.Value);
                var sw = Stopwatch.StartNew();
                using (var source = new HttpSource(server.BaseUri, new HttpSourceOptions { MaxConnections = 4 }))
                {
                    var r = UpdateFrom(a, source, UpOptions());
                    bytes = r.BytesDownloaded;
                    route = r.DeltaFrom is null ? "pieces" : "deltas";
                }
                http.Add(sw.Elapsed);
                var fetched = server.RequestCounts.Where(kv => kv.Value > before.GetValueOrDefault(kv.Key)).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();

                if (haveCurl)
                {
                    var into = Path.Join(dir, $"t{run}-curl");
                    Directory.CreateDirectory(into);
                    var config = new StringBuilder();
                    for (var i = 0; i < fetched.Count; i++)
                        config.Append(CultureInfo.InvariantCulture, $"url = \"{new Uri(server.BaseUri, fetched[i]).AbsoluteUri}\"\noutput = \"{Path.Join(into, i.ToString(CultureInfo.InvariantCulture))}\"\n");
                    var configPath = Path.Join(into, "curl.config");
                    File.WriteAllText(configPath, config.ToString());
                    var c = Proc.Check("curl", ["--silent", "--show-error", "--fail", "--parallel", "--parallel-max", "4", "--config", configPath]);
                    curl.Add(c.Elapsed);
                    TreeWriter.DeleteTree(into);
                }

                sw.Restart();
                UpdateFrom(b, new DirectorySource(store), UpOptions());
                local.Add(sw.Elapsed);
                if (HashListing(a) != HashListing(b)) throw new InvalidOperationException("the two updates ended in different trees");
                TreeWriter.DeleteTree(Path.GetDirectoryName(a)!);
                TreeWriter.DeleteTree(Path.GetDirectoryName(b)!);
            }

            var baseline = haveCurl ? curl.Median + local.Median : double.NaN;
            var ratio = http.Median / baseline;
            _upRows.Add($"| time, {what} ({Fmt.Bytes(bytes)} fetched, {route}): update over loopback HTTP {http.Describe()} | — | — | curl {curl.Describe()} + update from the store as a directory {local.Describe()} | ratio HTTP / (curl + directory): {(haveCurl ? ratio.ToString("0.00", CultureInfo.InvariantCulture) : "n/a (no curl)")} | ≤ 1.5: {(haveCurl ? YesNo(ratio <= 1.5) : "n/a")} |");
            Log($"timing, {what}: http {http.Describe()}, curl {curl.Describe()}, directory {local.Describe()}, ratio {ratio:0.00}");
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Path, size and SHA-256 of every file, sorted: equal trees give equal text.</summary>
    private static string HashListing(string root) =>
        string.Join('\n', Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)).Order(StringComparer.Ordinal)
            .Select(p => $"{p} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Join(root, p))))}"));
}
