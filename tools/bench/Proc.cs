using System.Diagnostics;
using System.Globalization;

namespace PatchBench;

internal sealed record ProcResult(int ExitCode, string Out, string Err, TimeSpan Elapsed);

/// <summary>Child processes: run, time, and measure peak resident memory.</summary>
internal static class Proc
{
    public static ProcResult Run(string file, IEnumerable<string> args, string? cwd = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = cwd ?? "",
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null)
        {
            foreach (var (k, v) in env) psi.Environment[k] = v;
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        sw.Stop();
        return new ProcResult(p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult(), sw.Elapsed);
    }

    /// <summary>Runs and throws with the output when the exit code is not 0.</summary>
    public static ProcResult Check(string file, IEnumerable<string> args, string? cwd = null)
    {
        var list = args.ToList();
        var r = Run(file, list, cwd);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', list)} exited {r.ExitCode}:\n{r.Out}\n{r.Err}");
        return r;
    }

    public static bool Exists(string name) =>
        name.Contains('/', StringComparison.Ordinal)
            ? File.Exists(name)
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Join(d, name)));

    /// <summary>syncfs of the file system holding <paramref name="path"/> (coreutils <c>sync -f</c>).</summary>
    public static void SyncFs(string path) => Check("sync", ["-f", path]);

    /// <summary>
    /// Runs a command and reports its peak resident set size (VmHWM) in bytes, from <c>/usr/bin/time -f %M</c>
    /// (getrusage of the child: the applying process itself, not the page cache).
    /// </summary>
    public static (ProcResult Result, long PeakRssBytes) RunWithPeakRss(string file, IEnumerable<string> args, string workDir)
    {
        if (!File.Exists("/usr/bin/time")) return PollPeakRss(file, args);
        var report = Path.Join(workDir, $"time-{Environment.ProcessId}-{Guid.NewGuid():N}.txt");
        var r = Run("/usr/bin/time", new[] { "-f", "%M", "-o", report, file }.Concat(args));
        var kb = long.Parse(File.ReadAllText(report).Trim().Split('\n')[^1], CultureInfo.InvariantCulture);
        File.Delete(report);
        return (r, kb * 1024);
    }

    /// <summary>Fallback without GNU time: poll VmHWM in /proc/PID/status until the child exits.</summary>
    private static (ProcResult, long) PollPeakRss(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peak = 0;
        while (!p.WaitForExit(20))
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{p.Id}/status"))
                {
                    if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                    peak = Math.Max(peak, 1024 * long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
            }
        }

        return (new ProcResult(p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult(), sw.Elapsed), peak);
    }
}

/// <summary>Several timings of one thing; the median is what the tables report.</summary>
internal sealed class Samples
{
    private readonly List<double> _seconds = [];

    public int Count => _seconds.Count;

    public void Add(TimeSpan t) => _seconds.Add(t.TotalSeconds);

    public void Add(double seconds) => _seconds.Add(seconds);

    public double Median
    {
        get
        {
            if (_seconds.Count == 0) return double.NaN;
            var s = _seconds.Order().ToList();
            var m = s.Count / 2;
            return s.Count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
        }
    }

    public double Min => _seconds.Count == 0 ? double.NaN : _seconds.Min();
    public double Max => _seconds.Count == 0 ? double.NaN : _seconds.Max();

    /// <summary>e.g. "1.23 s (1.10–1.40, n=5)".</summary>
    public string Describe() => Count == 0 ? "n/a" : $"{Fmt.Seconds(Median)} ({Fmt.Seconds(Min)}–{Fmt.Seconds(Max)}, n={Count})";
}

internal static class Fmt
{
    public static string Seconds(double s) =>
        double.IsNaN(s) ? "n/a"
        : s >= 10 ? s.ToString("0.0", CultureInfo.InvariantCulture) + " s"
        : s >= 1 ? s.ToString("0.00", CultureInfo.InvariantCulture) + " s"
        : s >= 0.01 ? (s * 1000).ToString("0", CultureInfo.InvariantCulture) + " ms"
        : s >= 0.0001 ? (s * 1000).ToString("0.00", CultureInfo.InvariantCulture) + " ms"
        : (s * 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " µs";

    public static string Bytes(long b) =>
        b >= 1L << 30 ? (b / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB"
        : b >= 1L << 20 ? (b / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB"
        : b >= 1L << 10 ? (b / (double)(1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + " KiB"
        : b.ToString(CultureInfo.InvariantCulture) + " B";

    public static string Ratio(double r) => double.IsNaN(r) || double.IsInfinity(r) ? "n/a" : r.ToString("0.00", CultureInfo.InvariantCulture) + "×";

    public static string Count(long n) => n.ToString("#,0", CultureInfo.InvariantCulture);
}
