using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PatchBench;

/// <summary>
/// Build throughput (<c>--build</c>): a generated tree of <c>--build-total-gb</c> (a few large pack files and many small
/// files, half text-like and half incompressible) and its next version with <c>--change-pct</c> of its bytes changed
/// (edits inside the large files that insert and delete, small files edited, added and removed), built with
/// <c>patchtool build</c> at the default level and at each of <c>--build-levels</c>, timed against two baselines of the
/// same run: copying the new tree and syncing it (<c>cp -a</c> + <c>sync -f</c>: reading and writing every byte once),
/// and compressing exactly the changed bytes at zstd's level 19 on every core (<c>zstd -19 --long=27 -T0</c>: the
/// cost floor of a level-19 patch that needs no reference).
/// </summary>
internal sealed partial class Bench
{
    private void BuildRun()
    {
        var total = o.BuildTotalBytes;
        var dir = Path.Join(o.Work, "build");
        var free = new DriveInfo(o.Work).AvailableFreeSpace;
        var need = (3 * total) + (1L << 30);
        Log($"disk: need about {Fmt.Bytes(need)}, {Fmt.Bytes(free)} free");
        if (free < need) throw new InvalidOperationException($"not enough free space in {o.Work}: use a smaller --build-total-gb");
        if (!Proc.Exists("zstd")) throw new InvalidOperationException("zstd CLI missing (apt-get install zstd)");
        PreparePatchTool();

        var old = Path.Join(dir, "old");
        var next = Path.Join(dir, "new");
        var changedFile = Path.Join(dir, "changed.bin");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var g = WriteBuildTrees(old, next, changedFile, total, new Rng(o.Seed + 77));
        Proc.SyncFs(dir);
        var newBytes = DirBytes(next);
        Log($"build: trees written in {Fmt.Seconds(sw.Elapsed.TotalSeconds)}: {g}; new tree {Fmt.Bytes(newBytes)}, changed bytes {Fmt.Bytes(g.ChangedBytes)}");

        // Baselines first, so the page cache holds what the builder reads as it holds what they read.
        Proc.Check("sh", ["-c", $"cat {Quote(changedFile)} > /dev/null"]);
        var zstd = Proc.Check("zstd", ["-q", "-f", "-19", "--long=27", "-T0", changedFile, "-o", changedFile + ".zst"]);
        var zstdBytes = new FileInfo(changedFile + ".zst").Length;
        var copyDir = Path.Join(dir, "copy");
        var copySw = System.Diagnostics.Stopwatch.StartNew();
        Proc.Check("cp", ["-a", next, copyDir]);
        Proc.SyncFs(copyDir);
        var copy = copySw.Elapsed.TotalSeconds;
        TreeWriter.DeleteTree(copyDir);
        Log($"build: baselines: zstd -19 --long=27 -T0 of the changed bytes {Fmt.Seconds(zstd.Elapsed.TotalSeconds)} ({Fmt.Bytes(zstdBytes)}); cp -a + sync of the new tree {Fmt.Seconds(copy)}");

        var rows = new List<string>();
        // 0: no --level, the default (patchtool prints the level it chose).
        var levels = new List<int> { 0 };
        levels.AddRange(o.BuildLevels);
        foreach (var level in levels)
        {
            var patch = Path.Join(dir, $"patch-{level}");
            // GNU time gives the child's peak RSS and its CPU seconds: on a machine other work shares, CPU seconds over the
            // two cores bound what the wall time would be alone.
            var timeFile = Path.Join(o.Work, $"time-build-{level}.txt");
            List<string> args = ["-f", "%M %U %S", "-o", timeFile, _patchtool, "build", "--from", old, "--to", next, "--out", patch, "--key", _keyFile,
                "--product", Product, "--version", "2.0.0", "--from-version", "1.0.0"];
            if (level != 0) args.AddRange(["--level", level.ToString(CultureInfo.InvariantCulture)]);
            var r = Proc.Run("/usr/bin/time", args);
            if (r.ExitCode != 0) throw new InvalidOperationException($"patchtool build --level {level} failed:\n{r.Out}\n{r.Err}");
            var used = Regex.Match(r.Out, @"zstd level (\d+)").Groups[1].Value;
            var t = File.ReadAllText(timeFile).Trim().Split('\n')[^1].Split(' ');
            var rss = long.Parse(t[0], CultureInfo.InvariantCulture) * 1024;
            var cpu = double.Parse(t[1], CultureInfo.InvariantCulture) + double.Parse(t[2], CultureInfo.InvariantCulture);
            var seconds = r.Elapsed.TotalSeconds;
            var bytes = DirBytes(patch);
            TreeWriter.DeleteTree(patch);
            var name = level == 0 ? $"{used} (default)" : used;
            var line = $"level {name}: {Fmt.Seconds(seconds)} wall, {Fmt.Seconds(cpu)} CPU, patch {Fmt.Bytes(bytes)}, peak RSS {Fmt.Bytes(rss)}";
            Log($"build: {line}");
            rows.Add($"| {name} | {Fmt.Seconds(seconds)} | {Fmt.Seconds(cpu)} | {Mib(newBytes, seconds)} | {Mib(g.ChangedBytes, seconds)} | {Fmt.Count(bytes)} | {Fmt.Bytes(rss)} | {Fmt.Ratio(seconds / copy)} | {Fmt.Ratio(seconds / zstd.Elapsed.TotalSeconds)} | {Fmt.Ratio(bytes / (double)zstdBytes)} | {(level == 0 ? YesNo(seconds < 120) + (seconds >= 120 && cpu / Environment.ProcessorCount < 120 ? " (CPU / cores: yes)" : "") : "—")} |");
        }

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### Build throughput ({o.Mode}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tools/bench -- --build --build-total-gb {o.BuildTotalGb.ToString(CultureInfo.InvariantCulture)} --change-pct {o.ChangePct.ToString(CultureInfo.InvariantCulture)}{(o.BuildLevels.Length > 0 ? " --build-levels " + string.Join(',', o.BuildLevels) : "")}`");
        sb.AppendLine();
        foreach (var (k, v) in _machine) sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Tree: {g}; new tree {Fmt.Bytes(newBytes)}, {Fmt.Bytes(g.ChangedBytes)} of it changed.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Baselines in the same run: `cp -a` + `sync -f` of the new tree {Fmt.Seconds(copy)}; `zstd -19 --long=27 -T0` of exactly the changed bytes {Fmt.Seconds(zstd.Elapsed.TotalSeconds)} ({Fmt.Count(zstdBytes)} bytes).");
        sb.AppendLine();
        sb.AppendLine("| level | `patchtool build` (wall, child process) | CPU (user + system) | MiB/s of the new tree | MiB/s of changed bytes | patch bytes | peak RSS | / cp + sync | / zstd -19 of the changed bytes | patch / zstd -19 of the changed bytes | under 2 minutes |");
        sb.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        foreach (var row in rows) sb.AppendLine(row);
        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
        TreeWriter.DeleteTree(dir);
    }

    private static string Mib(long bytes, double seconds) => (bytes / (double)(1 << 20) / seconds).ToString("0.0", CultureInfo.InvariantCulture);

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>What <see cref="WriteBuildTrees"/> wrote.</summary>
    private sealed record BuildTrees(int LargeFiles, int SmallFiles, int Edits, int ChangedSmall, int Added, int Removed, long ChangedBytes)
    {
        public override string ToString() =>
            $"{LargeFiles} large files ({Edits} edits inside them), {SmallFiles} small files ({ChangedSmall} edited, {Added} added, {Removed} removed)";
    }

    /// <summary>
    /// The old and new trees. Half the bytes are four large pack files (two text-like, two incompressible), edited in
    /// place with insertions and deletions of up to 64 KiB (later content shifts); the other half small files of log-normal
    /// sizes around 64 KiB, text-like or incompressible, some edited, some removed, some added. Every new byte that
    /// is not in the old tree is also appended to <paramref name="changedFile"/>, the zstd baseline's input.
    /// </summary>
    private BuildTrees WriteBuildTrees(string old, string next, string changedFile, long total, Rng rng)
    {
        var words = Vocabulary(rng);
        var share = o.ChangePct / 100.0;
        Directory.CreateDirectory(Path.Join(old, "packs"));
        Directory.CreateDirectory(Path.Join(next, "packs"));
        using var changed = new FileStream(changedFile, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        var edits = 0;
        var largeSize = total / 8;
        var buffer = new byte[4 << 20];
        for (var f = 0; f < 4; f++)
        {
            var text = f % 2 == 0;
            var rel = $"packs/data{f}.pak";
            using (var w = new FileStream(Path.Join(old, rel), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                for (long left = largeSize; left > 0;)
                {
                    var n = (int)Math.Min(left, buffer.Length);
                    if (text) Text(words, rng, n).CopyTo(buffer, 0);
                    else rng.Fill(buffer.AsSpan(0, n));
                    w.Write(buffer, 0, n);
                    left -= n;
                }
            }

            // Edits of 32 KiB inserted on average (each also deleting up to 64 KiB), as many as make the share of new bytes.
            var count = Math.Max(1, (int)(largeSize * share / (32 << 10)));
            var at = Enumerable.Range(0, count).Select(_ => (long)(rng.NextDouble() * (largeSize - (128 << 10)))).Order().ToList();
            using var src = File.OpenRead(Path.Join(old, rel));
            using var dst = new FileStream(Path.Join(next, rel), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            long pos = 0;
            foreach (var a in at)
            {
                if (a < pos) continue;
                CopyRange(src, dst, a - pos);
                var del = rng.NextInt(64 << 10);
                src.Seek(del, SeekOrigin.Current);
                var len = rng.NextInt(64 << 10) + 1;
                var ins = text ? Text(words, rng, len) : new byte[len];
                if (!text) rng.Fill(ins);
                dst.Write(ins);
                changed.Write(ins);
                pos = a + del;
                edits++;
            }

            src.CopyTo(dst);
        }

        // Small files: half the bytes, sizes log-normal around 64 KiB (4 KiB to 4 MiB).
        int small = 0, changedSmall = 0, added = 0, removed = 0;
        for (long left = total - (4 * largeSize); left > 0; small++)
        {
            var size = (int)Math.Min(left, Math.Clamp(64 * 1024 * Math.Exp(1.0 * rng.NextGaussian()), 4096, 4 << 20));
            left -= size;
            var rel = $"assets/d{small / 100:D3}/f{small:D5}.{(small % 2 == 0 ? "txt" : "bin")}";
            var content = NewContent(small % 2 == 0, size);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(old, rel))!);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(next, rel))!);
            File.WriteAllBytes(Path.Join(old, rel), content);
            var roll = rng.NextDouble();
            if (roll < share * 0.2)
            {
                removed++;
                continue;
            }

            if (roll < share * 0.2 + (share * 0.8))
            {
                // Edited in one to three places: a span replaced by as many new bytes.
                for (var e = 1 + rng.NextInt(3); e > 0; e--)
                {
                    var len = Math.Min(content.Length, 1 + rng.NextInt(16 << 10));
                    var start = rng.NextInt(content.Length - len + 1);
                    var fresh = NewContent(small % 2 == 0, len);
                    fresh.CopyTo(content, start);
                    changed.Write(fresh);
                }

                changedSmall++;
            }

            File.WriteAllBytes(Path.Join(next, rel), content);
            if (rng.NextDouble() < share * 0.9)
            {
                // An added file of about the same size.
                var addRel = $"assets/d{small / 100:D3}/new{small:D5}.{(small % 2 == 0 ? "txt" : "bin")}";
                var fresh = NewContent(small % 2 == 0, size);
                File.WriteAllBytes(Path.Join(next, addRel), fresh);
                changed.Write(fresh);
                added++;
            }
        }

        return new BuildTrees(4, small, edits, changedSmall, added, removed, changed.Length);

        byte[] NewContent(bool text, int size)
        {
            if (text) return Text(words, rng, size);
            var b = new byte[size];
            rng.Fill(b);
            return b;
        }
    }
}
