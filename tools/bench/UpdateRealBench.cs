using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Patching;
using Patching.Tests.TestHelpers;

namespace PatchBench;

/// <summary>
/// The update checks on real inputs (<c>--update-series</c>, <c>--update-repair-mb</c>): an install of the first of four
/// successive releases updated to the fourth over loopback HTTP, with and without stored deltas, against the three
/// single-step costs and the full version; and a full repair of one large file damaged in a few bytes, against the
/// damaged chunks and against <c>cp</c> + <c>sync</c> of the same file in the same run.
/// </summary>
internal sealed partial class Bench
{
    private readonly List<string> _realRows = [];

    private void UpdateRealRun()
    {
        PreparePatchTool();
        var dir = Path.Join(o.Work, "update-real");
        Directory.CreateDirectory(dir);
        if (o.UpSeries.Length > 0) RealSeries(Path.Join(dir, "series"));
        if (o.UpRepairMb > 0) RepairBig(Path.Join(dir, "repair"));

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### Updates from a store: real series and repair ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        var series = o.UpSeries.Length > 0 ? $" --update-series {string.Join(',', o.UpSeries.Select(Path.GetFileName))}" : "";
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tools/bench --{series} --update-repair-mb {o.UpRepairMb.ToString(CultureInfo.InvariantCulture)} --up-level {o.UpLevel}`");
        sb.AppendLine();
        foreach (var (k, v) in _machine) sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        sb.AppendLine();
        sb.AppendLine("| case | measured | bound | ratio | within |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var row in _realRows) sb.AppendLine(row);
        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
    }

    /// <summary>A directory as it is, or an npm tarball (<c>.tgz</c>) unpacked into <paramref name="into"/>.</summary>
    private static string TreeOf(string input, string into)
    {
        if (Directory.Exists(input)) return input;
        Directory.CreateDirectory(into);
        using (var file = File.OpenRead(input))
        using (var gz = new GZipStream(file, CompressionMode.Decompress))
            TarFile.ExtractToDirectory(gz, into, overwriteFiles: true);
        return into;
    }

    /// <summary>Bytes the server sent: piece and delta bodies as counted, plus every other file it served whole.</summary>
    private static long ServedBytes(StoreServer server, IReadOnlyDictionary<string, int> before) =>
        server.RequestCounts.Where(kv => !StoreServer.IsPiece(kv.Key) && !StoreServer.IsDelta(kv.Key) && File.Exists(Path.Join(server.Root, kv.Key)))
            .Sum(kv => (kv.Value - before.GetValueOrDefault(kv.Key)) * new FileInfo(Path.Join(server.Root, kv.Key)).Length);

    private (UpdateResult Result, long Served, long Meta) UpdateOverHttp(string install, string store)
    {
        var server = StoreServer.StartAsync(store).GetAwaiter().GetResult();
        try
        {
            using var source = new HttpSource(server.BaseUri, new HttpSourceOptions { MaxConnections = 4 });
            var r = UpdateFrom(install, source, UpOptions());
            var meta = ServedBytes(server, new Dictionary<string, int>());
            return (r, server.BlobBytesServed + meta, meta);
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    // ---------------------------------------------------------------- four successive real releases

    private void RealSeries(string dir)
    {
        if (o.UpSeries.Length != 4) throw new ArgumentException("--update-series needs four releases");
        Directory.CreateDirectory(dir);
        var trees = o.UpSeries.Select((p, i) => TreeOf(p, Path.Join(dir, $"tree-{i + 1}"))).ToList();
        var versions = new[] { "1.0.0", "2.0.0", "3.0.0", "4.0.0" };
        var names = o.UpSeries.Select(p => Path.GetFileName(p.TrimEnd('/'))).ToList();
        var s1 = Path.Join(dir, "s1");
        var withDeltas = Path.Join(dir, "store-deltas");
        var noDeltas = Path.Join(dir, "store-pieces");
        var sw = Stopwatch.StartNew();
        Publish(s1, trees[0], versions[0], null);
        Proc.Check("cp", ["-al", s1, withDeltas]);
        Proc.Check("cp", ["-al", s1, noDeltas]);
        for (var v = 1; v < 4; v++)
        {
            Publish(withDeltas, trees[v], versions[v], versions[v - 1]);
            Publish(noDeltas, trees[v], versions[v], null);
        }

        Log($"real series {string.Join(" → ", names)} published twice in {Fmt.Seconds(sw.Elapsed.TotalSeconds)} (zstd level {o.UpLevel})");
        var idx = versions.Select(v => Index(withDeltas, v)).ToList();
        var sumDeltas = idx[1].Deltas["1.0.0"] + idx[2].Deltas["2.0.0"] + idx[3].Deltas["3.0.0"];
        var stepPieces = Enumerable.Range(1, 3).Select(v => idx[v].Frames.Where(kv => !idx[v - 1].Pieces.Contains(kv.Key)).Sum(kv => kv.Value)).ToList();
        var sumPieces = stepPieces.Sum();
        var full = idx[3].Stored;
        var tgz = File.Exists(o.UpSeries[3]) ? $"; the npm tarball {Fmt.Bytes(new FileInfo(o.UpSeries[3]).Length)}" : "";
        var series = $"{string.Join(" → ", names)} (each {Fmt.Bytes(idx[3].Raw)} raw, full version {Fmt.Bytes(full)} as zstd pieces{tgz})";

        foreach (var (store, what, sum, sumWhat) in new[] { (withDeltas, "store with the three single-step deltas", sumDeltas, "sum of the three single-step deltas"), (noDeltas, "store without deltas", sumPieces, "sum of the three single-step piece sets") })
        {
            var install = Path.Join(dir, $"install-{Path.GetFileName(store)}/game");
            UpdateFrom(install, new DirectorySource(s1), UpOptions());
            UpdateResult r;
            long served, meta;
            try
            {
                (r, served, meta) = UpdateOverHttp(install, store);
            }
            catch (PatcherException e)
            {
                // A failed route is a result too: report it and measure the other store.
                _realRows.Add($"| {series}, three versions behind, {what}: update over loopback HTTP **failed** ({e.Code}: {e.Message.ReplaceLineEndings(" ")}) | — | {sumWhat}: {Fmt.Bytes(sum)}; full version {Fmt.Bytes(full)} | — | **no** |");
                Log($"real series, {what}: failed: {e.Message}");
                continue;
            }

            if (HashListing(install) != HashListing(trees[3])) throw new InvalidOperationException($"the update from {what} did not end in the fourth release");
            var route = r.DeltaFrom is null ? "pieces" : "deltas";
            _realRows.Add($"| {series}, three versions behind, {what}: fetched over loopback HTTP ({route}; `BytesDownloaded` {Fmt.Bytes(r.BytesDownloaded)}, plus {Fmt.Bytes(meta)} of manifests, indexes and channel) | {Fmt.Bytes(served)} | {sumWhat}: {Fmt.Bytes(sum)} ({string.Join(" + ", what.Contains("without", StringComparison.Ordinal) ? stepPieces.Select(Fmt.Bytes) : [Fmt.Bytes(idx[1].Deltas["1.0.0"]), Fmt.Bytes(idx[2].Deltas["2.0.0"]), Fmt.Bytes(idx[3].Deltas["3.0.0"])])}); full version {Fmt.Bytes(full)} | {Ratio(r.BytesDownloaded, sum)} of the sum, {Ratio(r.BytesDownloaded, full)} of full (with metadata: {Ratio(served, sum)}, {Ratio(served, full)}) | ≤ sum: {YesNo(r.BytesDownloaded <= sum)}; ≤ full: {YesNo(r.BytesDownloaded <= full)} |");
            Log($"real series, {what}: {route}, downloaded {r.BytesDownloaded}, served {served} (metadata {meta}); {sumWhat} {sum}; full {full}");
        }
    }

    private static string Ratio(long part, long whole) => whole == 0 ? "n/a" : ((double)part / whole).ToString("0.000", CultureInfo.InvariantCulture);

    // ---------------------------------------------------------------- repair of one large file

    private void RepairBig(string dir)
    {
        Directory.CreateDirectory(dir);
        var size = (long)(o.UpRepairMb * (1L << 20));
        var tree = Path.Join(dir, "tree");
        var big = Path.Join(tree, "data", "big.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(big)!);
        File.WriteAllText(Path.Join(tree, "readme.txt"), "one large file\n");
        var rng = new Rng(o.Seed + 77);
        var words = Vocabulary(rng);
        using (var f = new FileStream(big, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            // Alternating 1 MiB blocks of random bytes and text-like bytes: half incompressible, half compressible.
            var block = new byte[1 << 20];
            for (long at = 0, n = 0; at < size; at += block.Length, n++)
            {
                var len = (int)Math.Min(block.Length, size - at);
                if (n % 2 == 0) rng.Fill(block.AsSpan(0, len));
                else Text(words, rng, len).CopyTo(block, 0);
                f.Write(block, 0, len);
            }
        }

        var store = Path.Join(dir, "store");
        var sw = Stopwatch.StartNew();
        Publish(store, tree, "1.0.0", null);
        Log($"repair: {Fmt.Bytes(size)} file published in {Fmt.Seconds(sw.Elapsed.TotalSeconds)}");
        TreeWriter.DeleteTree(tree);
        var install = Path.Join(dir, "install/game");
        UpdateFrom(install, new DirectorySource(store), UpOptions());
        var installed = Path.Join(install, "data", "big.bin");

        // Damage three 8-byte regions far apart: at 10%, 50% and 90% of the file.
        var offsets = new[] { size / 10, size / 2, size / 10 * 9 };
        using (var f = new FileStream(installed, FileMode.Open, FileAccess.ReadWrite))
        {
            var buf = new byte[8];
            foreach (var at in offsets)
            {
                f.Position = at;
                f.ReadExactly(buf);
                for (var i = 0; i < buf.Length; i++) buf[i] ^= 0x5A;
                f.Position = at;
                f.Write(buf);
            }
        }

        // The chunks the damage falls in, from the manifest's list of the file's parts.
        var (raw, stored, count) = DamagedChunks(store, "data/big.bin", offsets);
        var idx = Index(store, "1.0.0");
        Proc.SyncFs(dir);

        var server = StoreServer.StartAsync(store).GetAwaiter().GetResult();
        RepairResult result;
        TimeSpan repairTime;
        long meta;
        string phases, metaPaths;
        try
        {
            using var source = new HttpSource(server.BaseUri, new HttpSourceOptions { MaxConnections = 4 });
            var clock = new PhaseClock();
            var start = Stopwatch.GetTimestamp();
            sw.Restart();
            result = Patcher.RepairAsync(install, source, UpOptions() with { FullRepair = true }, clock).GetAwaiter().GetResult();
            repairTime = sw.Elapsed;
            phases = PhaseStarts(clock, start);
            meta = ServedBytes(server, new Dictionary<string, int>());
            metaPaths = string.Join(", ", server.RequestCounts.Where(kv => !StoreServer.IsPiece(kv.Key) && !StoreServer.IsDelta(kv.Key) && File.Exists(Path.Join(store, kv.Key)))
                .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {Fmt.Bytes(new FileInfo(Path.Join(store, kv.Key)).Length)}{(kv.Value > 1 ? $" ×{kv.Value}" : "")}"));
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        if (!result.Repaired) throw new InvalidOperationException("repair found nothing to repair");
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.OpenRead(installed)));
        using (var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Join(store, "versions", "1.0.0", "manifest.json"))))
        {
            var want = manifest.RootElement.GetProperty("files").EnumerateArray().First(e => e.GetProperty("path").GetString() == "data/big.bin").GetProperty("sha256").GetString();
            if (hash != want) throw new InvalidOperationException("the repaired file does not match the manifest");
        }

        // Baseline: copy the same file and sync it, in the same run.
        var copy = Path.Join(dir, "copy.bin");
        Proc.SyncFs(dir);
        var cp = Proc.Check("sh", ["-c", $"cp '{installed}' '{copy}' && sync -f '{copy}'"]);
        File.Delete(copy);

        _realRows.Add($"| full repair over loopback HTTP of one {Fmt.Bytes(size)} file (half random, half text-like 1 MiB blocks) with 3 damaged 8-byte regions: pieces fetched (`BytesDownloaded`, {result.PiecesDownloaded} pieces) | {Fmt.Bytes(result.BytesDownloaded)} | the {count} damaged chunks: {Fmt.Bytes(stored)} as stored zstd frames ({Fmt.Bytes(raw)} raw; chunks average 64 KiB, at most 256 KiB); the whole file stored: {Fmt.Bytes(idx.Stored)} | {Ratio(result.BytesDownloaded, stored)} of the damaged chunks, {Ratio(result.BytesDownloaded, idx.Stored)} of the whole file | ≤ damaged chunks: {YesNo(result.BytesDownloaded <= stored)} |");
        _realRows.Add($"| the same repair: everything else the server sent (whole files: {metaPaths}) | {Fmt.Bytes(meta)} | — | total {Fmt.Bytes(result.BytesDownloaded + meta)} = {Ratio(result.BytesDownloaded + meta, idx.Stored)} of the whole file stored | — |");
        _realRows.Add($"| time of that repair ({phases}) | {Fmt.Seconds(repairTime.TotalSeconds)} | `cp` + `sync -f` of the same file: {Fmt.Seconds(cp.Elapsed.TotalSeconds)} | {(repairTime.TotalSeconds / cp.Elapsed.TotalSeconds).ToString("0.00", CultureInfo.InvariantCulture)}× | (no target) |");
        Log($"repair: downloaded {result.BytesDownloaded} in {result.PiecesDownloaded} pieces, metadata {meta}; damaged chunks {count}, {stored} stored / {raw} raw; repair {repairTime.TotalSeconds:0.00}s, cp+sync {cp.Elapsed.TotalSeconds:0.00}s");
        TreeWriter.DeleteTree(dir);
    }

    /// <summary>When each phase was first reported, in seconds after <paramref name="start"/> (a Stopwatch timestamp).</summary>
    private static string PhaseStarts(PhaseClock clock, long start) =>
        "phases first reported at " + string.Join(", ", Enum.GetValues<PatchPhase>().Where(p => clock.At(p) != 0).OrderBy(clock.At)
            .Select(p => $"{p} {Fmt.Seconds(Stopwatch.GetElapsedTime(start, clock.At(p)).TotalSeconds)}"));

    private static (long Raw, long Stored, int Count) DamagedChunks(string store, string path, long[] offsets)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Join(store, "versions", "1.0.0", "manifest.json")));
        var frames = Index(store, "1.0.0").Frames;
        var file = manifest.RootElement.GetProperty("files").EnumerateArray().First(e => e.GetProperty("path").GetString() == path);
        long at = 0, raw = 0, stored = 0;
        var count = 0;
        foreach (var part in file.GetProperty("parts").EnumerateArray())
        {
            var len = part.GetProperty("size").GetInt64();
            if (offsets.Any(x => x + 8 > at && x < at + len))
            {
                raw += len;
                stored += frames[part.GetProperty("sha256").GetString()!];
                count++;
            }

            at += len;
        }

        return (raw, stored, count);
    }
}
