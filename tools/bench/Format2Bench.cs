using System.Diagnostics;
using System.Globalization;
using System.Text;
using Patching;

namespace PatchBench;

/// <summary>
/// The format-2 checks (<c>--format2</c>): apply of a compressible update against the zstd CLI decoding the same
/// changed files (its own <c>--patch-from</c> deltas at the builder's default level) plus writing and syncing them,
/// peak RSS of applying a delta to one large file, and build throughput. Ratios are medians of alternating runs.
/// </summary>
internal sealed partial class Bench
{
    /// <summary>patchtool build's default zstd level (its --help says so); the zstd CLI baseline uses the same.</summary>
    private const int DefaultLevel = 19;

    private readonly Samples _f2Apply = new(), _f2ApplyPatched = new(), _f2Zstd = new(), _f2ZstdOne = new(), _f2ApplyCpu = new();
    private readonly List<string> _f2Rows = [];

    private void Format2Run()
    {
        var free = new DriveInfo(o.Work).AvailableFreeSpace;
        var need = (4 * o.F2BigBytes) + (6 * o.F2TotalBytes) + (1L << 30);
        Log($"disk: need about {Fmt.Bytes(need)} at peak, {Fmt.Bytes(free)} free");
        if (free < need) throw new InvalidOperationException($"not enough free space in {o.Work}: use smaller --f2-big-mb / --f2-total-mb");
        if (!Proc.Exists("zstd")) throw new InvalidOperationException("zstd CLI missing (apt-get install zstd)");
        PreparePatchTool();
        WarmUp();
        ApplyVsZstd();
        if (o.F2BigBytes > 0) BigDeltaMemory();

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### Format 2 ({o.Mode}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `dotnet run -c Release --project tools/bench -- --format2{(o.Quick ? " --quick" : "")} --f2-total-mb {o.F2TotalMb.ToString(CultureInfo.InvariantCulture)} --f2-big-mb {o.F2BigMb.ToString(CultureInfo.InvariantCulture)} --runs {o.Runs}`");
        sb.AppendLine();
        foreach (var (k, v) in _machine) sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        sb.AppendLine();
        foreach (var row in _f2Rows) sb.AppendLine(row);
        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
    }

    // ---------------------------------------------------------------- apply against zstd -d

    private void ApplyVsZstd()
    {
        var dir = Path.Join(o.Work, "f2text");
        var old = Path.Join(dir, "old");
        var next = Path.Join(dir, "new");
        var rng = new Rng(o.Seed + 21);
        var words = Vocabulary(rng);
        var (changed, added, removed) = WriteTextTrees(old, next, words, rng);
        Proc.SyncFs(dir);
        var changedBytes = changed.Concat(added).Sum(p => new FileInfo(Path.Join(next, p)).Length);

        // Build (format 2 at the default level), timed: throughput in bytes of the new version's changed and added files.
        var patch = Path.Join(dir, "patch");
        var (build, patchBytes) = BuildFormat2(old, next, patch);

        // The zstd CLI's own patch for the same files, built outside the timing: --patch-from deltas at the same
        // level for changed files, whole frames for added ones.
        var zdir = Path.Join(dir, "zstd");
        long zBytes = 0;
        var jobs = new List<(string Rel, string Frame, string? From)>();
        foreach (var (rel, i) in changed.Select((r, i) => (r, i)).Concat(added.Select((r, i) => (r, i + changed.Count))))
        {
            var frame = Path.Join(zdir, $"{i:D5}.zst");
            Directory.CreateDirectory(zdir);
            var from = changed.Contains(rel) ? Path.Join(old, rel) : null;
            var args = new List<string> { "-q", "-f", $"-{DefaultLevel}", "--long=27" };
            if (from is not null) args.Add($"--patch-from={from}");
            args.AddRange([Path.Join(next, rel), "-o", frame]);
            Proc.Check("zstd", args);
            zBytes += new FileInfo(frame).Length;
            jobs.Add((rel, frame, from));
        }

        var one = OneFrame(jobs, next, zdir);

        Log($"format 2: {Fmt.Count(changed.Count)} changed, {Fmt.Count(added.Count)} added, {Fmt.Count(removed.Count)} removed text files " +
            $"({Fmt.Bytes(changedBytes)} of new content); patch {Fmt.Bytes(patchBytes)} built in {Fmt.Seconds(build)}; zstd's frames {Fmt.Bytes(zBytes)}");

        for (var run = 0; run <= o.Runs; run++)
        {
            var runDir = Path.Join(dir, $"run{run}");
            var install = Path.Join(runDir, "install");
            Directory.CreateDirectory(runDir);
            Proc.Check("cp", ["-a", old, install]);
            var zout = Path.Join(runDir, "zout");
            Directory.CreateDirectory(zout);
            Proc.SyncFs(dir);

            // Alternate the order, so neither side always runs on a cache the other warmed.
            double? z = null, z1 = null;
            ApplyTiming? t = null;
            if (run % 2 == 0)
            {
                z = ZstdDecode(jobs, zout);
                z1 = ZstdDecodeOne(one, zout);
            }

            // CPU of this process over the apply and its background cleanup: less noisy than wall time on a shared machine.
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            t = ApplyInProcess(install, patch, CommitStrategy.Auto);
            var applyCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            z ??= ZstdDecode(jobs, zout);
            z1 ??= ZstdDecodeOne(one, zout);
            if (t is null) throw new InvalidOperationException("apply returned nothing");
            var diff = Proc.Run("diff", ["-r", "-q", next, install]);
            if (diff.ExitCode != 0) throw new InvalidOperationException($"applied tree differs from the new version:\n{diff.Out}");
            if (run > 0)
            {
                // Run 0 is a warm-up of the format-2 path (its first delta decode and chunk copy).
                _f2Apply.Add(t.Done);
                _f2ApplyPatched.Add(t.Patched);
                _f2Zstd.Add(z.Value);
                _f2ZstdOne.Add(z1.Value);
                _f2ApplyCpu.Add(applyCpu);
            }

            Log($"  run {run}: apply done {Fmt.Seconds(t.Done)}, CPU {Fmt.Seconds(applyCpu)} (patched {Fmt.Seconds(t.Patched)}; signature {Fmt.Seconds(t.Signature)}, plan {Fmt.Seconds(t.Plan)}, " +
                $"receive {Fmt.Seconds(t.Receive)}, staged {Fmt.Seconds(t.StageFiles)}, commit {Fmt.Seconds(t.Commit)}, cleanup {Fmt.Seconds(t.Cleanup)}), " +
                $"zstd -d + sync {Fmt.Seconds(z.Value)}, one zstd -d + sync {Fmt.Seconds(z1.Value)}{(run == 0 ? " (warm-up, not counted)" : "")}");
            TreeWriter.DeleteTree(runDir);
        }

        // The baseline starts one zstd process per file (--patch-from takes one old file per call); what that alone
        // costs, so the ratio can be read without it too.
        var empty = Path.Join(zdir, "empty.zst");
        File.WriteAllBytes(Path.Join(zdir, "empty"), []);
        Proc.Check("zstd", ["-q", "-f", Path.Join(zdir, "empty"), "-o", empty]);
        var spawn = new Samples();
        for (var run = 0; run < 3; run++)
        {
            var sw2 = Stopwatch.StartNew();
            foreach (var _ in jobs) Proc.Check("zstd", ["-q", "-d", "-f", empty, "-o", "/dev/null"]);
            spawn.Add(sw2.Elapsed);
        }

        var ratio = _f2Apply.Median / _f2Zstd.Median;
        var ratioNoSpawn = _f2Apply.Median / (_f2Zstd.Median - spawn.Median);
        _f2Rows.Add($"Compressible update: {Fmt.Count(changed.Count)} text files edited in places, {Fmt.Count(added.Count)} added, {Fmt.Count(removed.Count)} removed, " +
                    $"in a tree of {Fmt.Bytes(DirBytes(old))} ({Fmt.Bytes(changedBytes)} of changed and added content in the new version). " +
                    $"Patch {Fmt.Bytes(patchBytes)}; the zstd CLI's frames for the same files {Fmt.Bytes(zBytes)}.");
        _f2Rows.Add("");
        _f2Rows.Add("| measure | Patcher | baseline | ratio | target | met |");
        _f2Rows.Add("|---|---|---|---|---|---|");
        _f2Rows.Add($"| apply (default strategy, in-process, until Apply returned) vs `zstd -d [--patch-from=OLD] --long=27` of each changed file into a new directory + `sync -f` | {_f2Apply.Describe()} | {_f2Zstd.Describe()} | {Fmt.Ratio(ratio)} | ≤ 1.3× | {YesNo(ratio <= 1.3)} |");
        _f2Rows.Add($"| same, the baseline without its {Fmt.Count(jobs.Count)} process starts (`zstd -d` of an empty frame {Fmt.Count(jobs.Count)} times: {spawn.Describe()}) | {_f2Apply.Describe()} | {Fmt.Seconds(_f2Zstd.Median - spawn.Median)} | {Fmt.Ratio(ratioNoSpawn)} | ≤ 1.3× | {YesNo(ratioNoSpawn <= 1.3)} |");
        var ratioOne = _f2Apply.Median / _f2ZstdOne.Median;
        _f2Rows.Add($"| same, against one `zstd -d --patch-from=OLD --long={one.WindowLog}` process decoding all {Fmt.Bytes(changedBytes)} as one frame (zstd -{OneFrameLevel}, {Fmt.Bytes(one.FrameBytes)}) against the old versions of the changed files concatenated, into one file + `sync -f` | {_f2Apply.Describe()} | {_f2ZstdOne.Describe()} | {Fmt.Ratio(ratioOne)} | ≤ 1.3× | {YesNo(ratioOne <= 1.3)} |");
        _f2Rows.Add($"| CPU time of the apply (this process, until its cleanup finished) | {_f2ApplyCpu.Describe()} | — | — | — | — |");
        _f2Rows.Add($"| same, until the switch was durable (`patched`) | {_f2ApplyPatched.Describe()} | {_f2Zstd.Describe()} | {Fmt.Ratio(_f2ApplyPatched.Median / _f2Zstd.Median)} | — | — |");
        _f2Rows.Add($"| build at the default level (zstd {DefaultLevel}), `patchtool build` | {Fmt.Seconds(build)} | — | {(changedBytes / (double)(1 << 20) / build).ToString("0.00", CultureInfo.InvariantCulture)} MiB/s of changed content | — | — |");
        if (!o.Keep) TreeWriter.DeleteTree(dir);
    }

    private static double ZstdDecode(List<(string Rel, string Frame, string? From)> jobs, string outRoot)
    {
        var sw = Stopwatch.StartNew();
        foreach (var (rel, frame, from) in jobs)
        {
            var dst = Path.Join(outRoot, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            var args = new List<string> { "-q", "-d", "--long=27" };
            if (from is not null) args.Add($"--patch-from={from}");
            args.AddRange([frame, "-o", dst]);
            Proc.Check("zstd", args);
        }

        Proc.SyncFs(outRoot);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Level of the one-frame baseline: zstd 19's optimal parser over one window of all the old and new text takes many
    /// minutes, and decoding a --patch-from frame is copying matches whatever level found them.
    /// </summary>
    private const int OneFrameLevel = 12;

    /// <summary>
    /// The zstd CLI's decode of the same bytes without a process per file: the new versions of the changed and added
    /// files concatenated, compressed at <see cref="OneFrameLevel"/> as one frame against the old versions of the changed files
    /// concatenated (built outside the timing), so that one process decodes, writes and syncs all of it.
    /// </summary>
    private static (string Reference, string Frame, int WindowLog, long FrameBytes) OneFrame(List<(string Rel, string Frame, string? From)> jobs, string next, string zdir)
    {
        var reference = Path.Join(zdir, "old.all");
        var content = Path.Join(zdir, "new.all");
        using (var r = File.Create(reference))
        using (var c = File.Create(content))
        {
            foreach (var (rel, _, from) in jobs)
            {
                if (from is not null)
                {
                    using var f = File.OpenRead(from);
                    f.CopyTo(r);
                }

                using var n = File.OpenRead(Path.Join(next, rel));
                n.CopyTo(c);
            }
        }

        var span = new FileInfo(reference).Length + new FileInfo(content).Length;
        var windowLog = Math.Max(20, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)span));
        var frame = Path.Join(zdir, "all.zst");
        Proc.Check("zstd", ["-q", "-f", $"-{OneFrameLevel}", $"--long={windowLog}", $"--patch-from={reference}", content, "-o", frame]);
        File.Delete(content);
        return (reference, frame, windowLog, new FileInfo(frame).Length);
    }

    private static double ZstdDecodeOne((string Reference, string Frame, int WindowLog, long FrameBytes) one, string outRoot)
    {
        var sw = Stopwatch.StartNew();
        Proc.Check("zstd", ["-q", "-d", "-f", $"--long={one.WindowLog}", $"--patch-from={one.Reference}", one.Frame, "-o", Path.Join(outRoot, "all")]);
        Proc.SyncFs(outRoot);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Pseudo-words of 2 to 10 letters, drawn with a skewed frequency, so the text compresses about as source code does.</summary>
    private static byte[][] Vocabulary(Rng rng) =>
        Enumerable.Range(0, 4000).Select(_ =>
        {
            var len = 2 + rng.NextInt(9);
            var w = new byte[len];
            for (var i = 0; i < len; i++) w[i] = (byte)('a' + rng.NextInt(26));
            return w;
        }).ToArray();

    private static byte[] Text(byte[][] words, Rng rng, int bytes)
    {
        var ms = new MemoryStream(bytes + 16);
        var col = 0;
        while (ms.Length < bytes)
        {
            var u = rng.NextDouble();
            var w = words[(int)(words.Length * u * u * u)];
            ms.Write(w);
            col += w.Length + 1;
            if (col > 60 + rng.NextInt(30))
            {
                ms.WriteByte((byte)'\n');
                col = 0;
            }
            else
            {
                ms.WriteByte((byte)' ');
            }
        }

        ms.SetLength(bytes);
        return ms.ToArray();
    }

    /// <summary>
    /// An old tree of text files (log-normal sizes, tens of KiB to several MiB) and its next version: two fifths of the
    /// files edited in one to four places (spans replaced by new text), a few added, a few removed.
    /// </summary>
    private (List<string> Changed, List<string> Added, List<string> Removed) WriteTextTrees(string old, string next, byte[][] words, Rng rng)
    {
        var sizes = new List<int>();
        for (long left = o.F2TotalBytes; left > 0;)
        {
            var s = (int)Math.Min(left, Math.Clamp(256 * 1024 * Math.Exp(1.2 * rng.NextGaussian()), 4096, 8 << 20));
            sizes.Add(s);
            left -= s;
        }

        List<string> changed = [], added = [], removed = [];
        for (var i = 0; i < sizes.Count; i++)
        {
            var rel = $"src/m{i / 20:D3}/file{i:D4}.txt";
            var content = Text(words, rng, sizes[i]);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(old, rel))!);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(next, rel))!);
            File.WriteAllBytes(Path.Join(old, rel), content);
            var roll = rng.NextDouble();
            if (roll < 0.03)
            {
                removed.Add(rel);
                continue;
            }

            if (roll < 0.43)
            {
                var edited = new List<byte>(content);
                for (var e = 1 + rng.NextInt(4); e > 0; e--)
                {
                    var at = rng.NextInt(edited.Count);
                    var cut = Math.Min(edited.Count - at, rng.NextInt(2048));
                    edited.RemoveRange(at, cut);
                    edited.InsertRange(at, Text(words, rng, rng.NextInt(4096)));
                }

                File.WriteAllBytes(Path.Join(next, rel), [.. edited]);
                changed.Add(rel);
                continue;
            }

            File.Copy(Path.Join(old, rel), Path.Join(next, rel));
        }

        for (var i = 0; i < Math.Max(1, sizes.Count / 20); i++)
        {
            var rel = $"src/new/added{i:D3}.txt";
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Join(next, rel))!);
            File.WriteAllBytes(Path.Join(next, rel), Text(words, rng, 16384 + rng.NextInt(256 * 1024)));
            added.Add(rel);
        }

        return (changed, added, removed);
    }

    // ---------------------------------------------------------------- peak RSS of a delta to one large file

    private void BigDeltaMemory()
    {
        var dir = Path.Join(o.Work, "f2big");
        var old = Path.Join(dir, "old");
        var next = Path.Join(dir, "new");
        Directory.CreateDirectory(old);
        Directory.CreateDirectory(next);
        var rng = new Rng(o.Seed + 22);
        var size = o.F2BigBytes;
        TreeWriter.WriteContent(Path.Join(old, "huge.pak"), new FileSpec("huge.pak", size, rng.Next(), false));
        File.WriteAllText(Path.Join(old, "readme.txt"), "large file check\n");
        File.Copy(Path.Join(old, "readme.txt"), Path.Join(next, "readme.txt"));

        // The next version: sixteen edits spread over the file, each deleting up to 64 KiB and inserting up to
        // 64 KiB of new bytes (so later content shifts: only content-defined chunking finds it again).
        var edits = Enumerable.Range(0, 16).Select(_ => (long)(rng.NextDouble() * (size - (1 << 20)))).Order().ToList();
        long inserted = 0;
        using (var src = File.OpenRead(Path.Join(old, "huge.pak")))
        using (var dst = new FileStream(Path.Join(next, "huge.pak"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            long pos = 0;
            foreach (var at in edits.Where(a => a >= 0))
            {
                if (at < pos) continue;
                CopyRange(src, dst, at - pos);
                var del = rng.NextInt(64 << 10);
                src.Seek(del, SeekOrigin.Current);
                var ins = new byte[rng.NextInt(64 << 10)];
                rng.Fill(ins);
                dst.Write(ins);
                inserted += ins.Length;
                pos = at + del;
            }

            src.CopyTo(dst);
        }

        Proc.SyncFs(dir);
        var newSize = new FileInfo(Path.Join(next, "huge.pak")).Length;
        var patch = Path.Join(dir, "patch");
        var (build, patchBytes) = BuildFormat2(old, next, patch);
        TreeWriter.DeleteTree(next);

        var install = Path.Join(dir, "run", "install");
        Directory.CreateDirectory(Path.GetDirectoryName(install)!);
        Proc.Check("cp", ["-a", old, install]);
        Proc.SyncFs(dir);
        var (r, rss) = Proc.RunWithPeakRss(_patchtool, ["apply", "--patch", patch, "--target", install, "--trust", Path.ChangeExtension(_keyFile, ".pub")], o.Work);
        if (r.ExitCode != 0) throw new InvalidOperationException($"patchtool apply of the large delta failed: {r.Out}\n{r.Err}");
        var got = new FileInfo(Path.Join(install, "huge.pak")).Length;
        if (got != newSize) throw new InvalidOperationException($"large file is {got} bytes after apply, expected {newSize}");
        var versionRss = Proc.RunWithPeakRss(_patchtool, ["--version"], o.Work).PeakRssBytes;
        Log($"format 2: delta to one {Fmt.Bytes(size)} file ({edits.Count} edits, {Fmt.Bytes(inserted)} inserted): patch {Fmt.Bytes(patchBytes)} built in {Fmt.Seconds(build)}; " +
            $"patchtool apply peak RSS {Fmt.Bytes(rss)} in {Fmt.Seconds(r.Elapsed.TotalSeconds)} (patchtool --version: {Fmt.Bytes(versionRss)})");

        _f2Rows.Add($"| peak RSS of `patchtool apply` (default strategy, a child process, `/usr/bin/time -f %M`) applying a delta to one {Fmt.Bytes(size)} file ({edits.Count} edits, {Fmt.Bytes(inserted)} inserted; patch {Fmt.Bytes(patchBytes)}) | {Fmt.Bytes(rss)} in {Fmt.Seconds(r.Elapsed.TotalSeconds)} | `patchtool --version`: {Fmt.Bytes(versionRss)} | — | ≤ 256 MiB{(size < 4L << 30 ? " (at 4 GiB; this run is smaller)" : "")} | {YesNo(rss <= 256L << 20)} |");
        _f2Rows.Add($"| build of that patch at the default level | {Fmt.Seconds(build)} | — | {(2 * size / (double)(1 << 20) / build).ToString("0", CultureInfo.InvariantCulture)} MiB/s of old + new bytes scanned | — | — |");
        TreeWriter.DeleteTree(dir);
    }

    /// <summary><c>patchtool build</c> with its defaults (format 2, default level), timed; returns the seconds and the patch's bytes.</summary>
    private (double Seconds, long Bytes) BuildFormat2(string old, string next, string patch)
    {
        var sw = Stopwatch.StartNew();
        Proc.Check(_patchtool, ["build", "--from", old, "--to", next, "--out", patch, "--key", _keyFile,
            "--product", Product, "--version", "2.0.0", "--from-version", "1.0.0"]);
        return (sw.Elapsed.TotalSeconds, DirBytes(patch));
    }

    private static void CopyRange(Stream src, Stream dst, long count)
    {
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            var n = src.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new EndOfStreamException();
            dst.Write(buffer, 0, n);
            count -= n;
        }
    }
}
