using System.Globalization;
using System.Text;

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
        var sw = System.Diagnostics.Stopwatch.StartNew();
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
        var report = sb.ToString();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
        if (!o.Keep) TreeWriter.DeleteTree(dir);
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
