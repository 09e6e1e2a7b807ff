using System.Diagnostics;
using System.Globalization;
using System.Text;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;

namespace PatchBench;

/// <summary>
/// One large file edited in many places (<c>--large-delta</c>): <c>patchtool apply</c> as a child process (wall, CPU
/// user + system, peak RSS from GNU time) against <c>zstd -d --patch-from=OLD</c> of the same new file + <c>sync -f</c>
/// in the same run, optionally also a second patchtool (<c>--patchtool-before</c>) on the same patch, so an apply
/// change is measured as a ratio of two builds under the same load. Runs alternate their order; medians are reported.
/// </summary>
internal sealed partial class Bench
{
    private void LargeDeltaRun()
    {
        var dir = Path.Join(o.Work, "large");
        var old = Path.Join(dir, "old");
        var next = Path.Join(dir, "new");
        var size = o.LdBytes;
        var free = new DriveInfo(o.Work).AvailableFreeSpace;
        if (free < (6 * size) + (1L << 30)) throw new InvalidOperationException($"not enough free space in {o.Work} for --ld-mb {o.LdMb}");
        if (!Proc.Exists("zstd")) throw new InvalidOperationException("zstd CLI missing (apt-get install zstd)");
        if (!File.Exists("/usr/bin/time")) throw new InvalidOperationException("GNU time missing (apt-get install time)");
        PreparePatchTool();
        Directory.CreateDirectory(old);
        Directory.CreateDirectory(next);
        var rng = new Rng(o.Seed + 23);
        TreeWriter.WriteContent(Path.Join(old, "huge.pak"), new FileSpec("huge.pak", size, rng.Next(), false));
        File.WriteAllText(Path.Join(old, "readme.txt"), "large delta check\n");

        // The next version: --ld-edits places spread evenly (with jitter) over the file, each replacing a span of old
        // bytes with as many new random bytes (--ld-pct of the file in all), so the file keeps its size.
        var span = (long)(size * o.LdPct / 100 / o.LdEdits);
        var stride = size / o.LdEdits;
        using (var src = File.OpenRead(Path.Join(old, "huge.pak")))
        using (var dst = new FileStream(Path.Join(next, "huge.pak"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            long pos = 0;
            for (var e = 0; e < o.LdEdits; e++)
            {
                var at = (e * stride) + (long)(rng.NextDouble() * Math.Max(0, stride - span));
                CopyRange(src, dst, at - pos);
                src.Seek(span, SeekOrigin.Current);
                var ins = new byte[span];
                rng.Fill(ins);
                dst.Write(ins);
                pos = at + span;
            }

            src.CopyTo(dst);
        }

        File.Copy(Path.Join(old, "readme.txt"), Path.Join(next, "readme.txt"));
        Proc.SyncFs(dir);

        var patch = Path.Join(dir, "patch");
        var sw = Stopwatch.StartNew();
        Proc.Check(_patchtool, ["build", "--from", old, "--to", next, "--out", patch, "--key", _keyFile,
            "--product", Product, "--version", "2.0.0", "--from-version", "1.0.0", "--level", o.LdLevel.ToString(CultureInfo.InvariantCulture)]);
        var build = sw.Elapsed.TotalSeconds;
        var patchBytes = DirBytes(patch);

        // zstd's own delta of the same file, at the same level, with a window over old and new.
        var windowLog = Math.Max(20, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(2 * size)));
        var frame = Path.Join(dir, "huge.zst");
        Proc.Check("zstd", ["-q", "-f", $"-{o.LdLevel}", $"--long={windowLog}", $"--patch-from={Path.Join(old, "huge.pak")}", Path.Join(next, "huge.pak"), "-o", frame]);
        var expected = Proc.Check("sha256sum", [Path.Join(next, "huge.pak")]).Out.Split(' ')[0];
        TreeWriter.DeleteTree(next);
        Log($"large delta: {Fmt.Bytes(size)} file, {o.LdEdits} edits of {Fmt.Bytes(span)}; patch {Fmt.Bytes(patchBytes)} built in {Fmt.Seconds(build)} at level {o.LdLevel}; zstd's frame {Fmt.Bytes(new FileInfo(frame).Length)}");

        var rebuilds = new[] { RebuildOnlyIn(old, patch, frame, windowLog, "the work directory (disk; this kernel pages cold file cache out)"), RebuildOnly(old, patch, frame, windowLog) }
            .Where(r => r is not null).Select(r => r!.Value).ToList();

        var contenders = new List<(string Name, string Tool)> { ("patchtool", _patchtool) };
        if (o.PatchToolBefore is { } before) contenders.Insert(0, ("patchtool (before)", before));
        var wall = contenders.ToDictionary(c => c.Name, _ => new Samples());
        var cpu = contenders.ToDictionary(c => c.Name, _ => new Samples());
        var rss = contenders.ToDictionary(c => c.Name, _ => new List<long>());
        var zstd = new Samples();
        var zstdCpu = new Samples();
        for (var run = 0; run < o.Runs; run++)
        {
            var order = contenders.Select(c => (c.Name, Tool: (string?)c.Tool)).Append(("zstd", null)).ToList();
            if (run % 2 == 1) order.Reverse();
            foreach (var (name, tool) in order)
            {
                var runDir = Path.Join(dir, "run");
                var install = Path.Join(runDir, "install");
                Directory.CreateDirectory(runDir);
                Proc.Check("cp", ["-a", old, install]);
                Proc.SyncFs(dir);
                var (seconds, cpuSeconds, peak) = tool is null
                    ? Timed("sh", ["-c", $"zstd -q -d -f --long={windowLog} --patch-from='{Path.Join(install, "huge.pak")}' '{frame}' -o '{Path.Join(runDir, "out")}' && sync -f '{runDir}'"], dir)
                    : Timed(tool, ["apply", "--patch", patch, "--target", install, "--trust", Path.ChangeExtension(_keyFile, ".pub")], dir);
                var result = Path.Join(tool is null ? runDir : install, tool is null ? "out" : "huge.pak");
                var got = Proc.Check("sha256sum", [result]).Out.Split(' ')[0];
                if (got != expected) throw new InvalidOperationException($"{name} produced another file ({got}, expected {expected})");
                if (tool is null)
                {
                    zstd.Add(seconds);
                    zstdCpu.Add(cpuSeconds);
                }
                else
                {
                    wall[name].Add(seconds);
                    cpu[name].Add(cpuSeconds);
                    rss[name].Add(peak);
                }

                Log($"  run {run}: {name} {Fmt.Seconds(seconds)} wall, {Fmt.Seconds(cpuSeconds)} CPU, peak RSS {Fmt.Bytes(peak)}");
                TreeWriter.DeleteTree(runDir);
            }
        }

        var sb = new StringBuilder();
        var ic = CultureInfo.InvariantCulture;
        sb.AppendLine(ic, $"### One large file edited in many places ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine(ic, $"Command: `dotnet run -c Release --project tools/bench -- --large-delta --ld-mb {o.LdMb.ToString(ic)} --ld-edits {o.LdEdits} --ld-pct {o.LdPct.ToString(ic)} --ld-level {o.LdLevel} --runs {o.Runs}{(o.PatchToolBefore is null ? "" : " --patchtool-before PATH")}`");
        sb.AppendLine();
        foreach (var (k, v) in _machine) sb.AppendLine(ic, $"- {k}: {v}");
        sb.AppendLine(ic, $"- load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        sb.AppendLine();
        sb.AppendLine(ic, $"One {Fmt.Bytes(size)} file of random bytes, {Fmt.Count(o.LdEdits)} spans of {Fmt.Bytes(span)} replaced by new random bytes ({o.LdPct.ToString(ic)}% of the file), spread over it. " +
                          $"Patch {Fmt.Bytes(patchBytes)} built at level {o.LdLevel} in {Fmt.Seconds(build)}; `zstd -{o.LdLevel} --long={windowLog} --patch-from` of the same file: {Fmt.Bytes(new FileInfo(frame).Length)}.");
        sb.AppendLine();
        sb.AppendLine("| apply | wall | / `zstd -d --patch-from` + `sync -f` | CPU (user + system) | peak RSS |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine(ic, $"| `zstd -d --long={windowLog} --patch-from=OLD` into a new file + `sync -f` | {zstd.Describe()} | 1.00× | {zstdCpu.Describe()} | — |");
        foreach (var (name, _) in contenders)
            sb.AppendLine(ic, $"| `{name} apply` (default strategy, child process) | {wall[name].Describe()} | {Fmt.Ratio(wall[name].Median / zstd.Median)} | {cpu[name].Describe()} | {Fmt.Bytes(rss[name].Max())} |");
        if (o.PatchToolBefore is not null)
            sb.AppendLine(ic, $"| after / before | {Fmt.Ratio(wall["patchtool"].Median / wall["patchtool (before)"].Median)} | | {Fmt.Ratio(cpu["patchtool"].Median / cpu["patchtool (before)"].Median)} | |");
        foreach (var rebuild in rebuilds)
        {
            sb.AppendLine();
            sb.AppendLine(ic, $"Rebuilding the file alone, in this process, into `Stream.Null` (old tree, patch and frame in {rebuild.Where}: reading, verifying, decoding and hashing, no disk writes), against `zstd -d --patch-from=OLD -o /dev/null` of the same files:");
            sb.AppendLine();
            sb.AppendLine("| rebuild | wall | / `zstd -d` | CPU (this process) |");
            sb.AppendLine("|---|---|---|---|");
            sb.AppendLine(ic, $"| `zstd -d --long={windowLog} --patch-from=OLD -o /dev/null` | {rebuild.Zstd.Describe()} | 1.00× | — |");
            sb.AppendLine(ic, $"| `DeltaReceiver.Write`, one operation at a time | {rebuild.Serial.Describe()} | {Fmt.Ratio(rebuild.Serial.Median / rebuild.Zstd.Median)} | {rebuild.SerialCpu.Describe()} |");
            sb.AppendLine(ic, $"| `DeltaReceiver.Write`, up to {DeltaReceiver.OpsInFlight} runs of operations at once | {rebuild.Parallel.Describe()} | {Fmt.Ratio(rebuild.Parallel.Median / rebuild.Zstd.Median)} | {rebuild.ParallelCpu.Describe()} |");
            sb.AppendLine(ic, $"| at once / one at a time | {Fmt.Ratio(rebuild.Parallel.Median / rebuild.Serial.Median)} | | {Fmt.Ratio(rebuild.ParallelCpu.Median / rebuild.SerialCpu.Median)} |");
        }

        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
        if (!o.Keep) TreeWriter.DeleteTree(dir);
    }

    /// <summary>
    /// The receiver alone on the large file, produced one operation at a time and several at once (same patch, same
    /// install, alternating), and the zstd CLI decoding its own delta of the same file to /dev/null.
    /// </summary>
    /// <remarks>
    /// The old tree, the patch and zstd's frame are copied to tmpfs (<c>/dev/shm</c>) when it has room: this machine's
    /// kernel pages cold file cache out (DAMON), so a file read from disk a minute after it was written measures the
    /// disk, not the rebuild.
    /// </remarks>
    private (Samples Serial, Samples SerialCpu, Samples Parallel, Samples ParallelCpu, Samples Zstd, string Where)? RebuildOnly(string old, string patch, string frame, int windowLog)
    {
        if (!Directory.Exists("/dev/shm") || new DriveInfo("/dev/shm").AvailableFreeSpace < (2 * o.LdBytes) + (1L << 30)) return null;
        var shm = Path.Join("/dev/shm", $"patcher-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(shm);
        try
        {
            Proc.Check("cp", ["-a", old, patch, frame, shm]);
            return RebuildOnlyIn(Path.Join(shm, Path.GetFileName(old)), Path.Join(shm, Path.GetFileName(patch)), Path.Join(shm, Path.GetFileName(frame)), windowLog, "tmpfs (`/dev/shm`)");
        }
        finally
        {
            TreeWriter.DeleteTree(shm);
        }
    }

    private (Samples Serial, Samples SerialCpu, Samples Parallel, Samples ParallelCpu, Samples Zstd, string Where) RebuildOnlyIn(string old, string patch, string frame, int windowLog, string where)
    {
        var package = PatchPackage.Open(patch, Patching.ManifestLimits.Default);
        var recipe = package.Manifest.Recipes.MaxBy(r => r.Size) ?? throw new InvalidOperationException("the patch rebuilds no content");
        var walk = TreeOps.Walk(FileOps.Instance, old).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);
        var serial = new Samples();
        var serialCpu = new Samples();
        var parallel = new Samples();
        var parallelCpu = new Samples();
        var zstd = new Samples();
        for (var run = 0; run <= o.Runs; run++)
        {
            foreach (var atOnce in run % 2 == 0 ? new[] { false, true } : [true, false])
            {
                using var receiver = new DeltaReceiver(FileOps.Instance, old, package, walk) { ParallelFromBytes = atOnce ? 0 : long.MaxValue };
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                receiver.Write(recipe, Stream.Null, null, CancellationToken.None);
                var (seconds, cpuSeconds) = (sw.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
                Log($"  rebuild in {where}, run {run}: {(atOnce ? "several at once" : "one at a time")} {Fmt.Seconds(seconds)}, CPU {Fmt.Seconds(cpuSeconds)}{(run == 0 ? " (warm-up, not counted)" : "")}");
                if (run == 0) continue;
                (atOnce ? parallel : serial).Add(seconds);
                (atOnce ? parallelCpu : serialCpu).Add(cpuSeconds);
            }

            var z = Stopwatch.StartNew();
            Proc.Check("zstd", ["-q", "-d", "-f", $"--long={windowLog}", $"--patch-from={Path.Join(old, "huge.pak")}", frame, "-o", "/dev/null"]);
            if (run > 0) zstd.Add(z.Elapsed.TotalSeconds);
        }

        return (serial, serialCpu, parallel, parallelCpu, zstd, where);
    }

    /// <summary>Runs a child under GNU time: wall seconds, CPU seconds (user + system) and peak RSS of the child.</summary>
    private static (double Wall, double Cpu, long PeakRss) Timed(string file, IEnumerable<string> args, string workDir)
    {
        var report = Path.Join(workDir, $"time-{Environment.ProcessId}.txt");
        var r = Proc.Run("/usr/bin/time", new[] { "-f", "%e %U %S %M", "-o", report, file }.Concat(args));
        if (r.ExitCode != 0) throw new InvalidOperationException($"{file} failed ({r.ExitCode}): {r.Out}\n{r.Err}");
        var t = File.ReadAllText(report).Trim().Split('\n')[^1].Split(' ');
        File.Delete(report);
        double D(int i) => double.Parse(t[i], CultureInfo.InvariantCulture);
        return (r.Elapsed.TotalSeconds, D(1) + D(2), long.Parse(t[3], CultureInfo.InvariantCulture) * 1024);
    }
}
