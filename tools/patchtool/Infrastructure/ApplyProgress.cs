using Patching;
using Spectre.Console;

namespace PatchTool.Infrastructure;

/// <summary>
/// Progress as plain lines (stdout is a file, a pipe or a test): one line per phase, and while staging or
/// downloading one per tenth of the bytes. Reports arrive synchronously on the engine's threads, so it locks.
/// </summary>
internal sealed class PlainProgress : IProgress<PatchProgress>
{
    private readonly TextWriter _out;
    private readonly Lock _gate = new();
    private PatchPhase? _phase;
    private long _lastTenth = -1;

    public PlainProgress(TextWriter output) => _out = output;

    public void Report(PatchProgress value)
    {
        lock (_gate)
        {
            if (value.Phase != _phase)
            {
                _phase = value.Phase;
                _lastTenth = value.BytesTotal > 0 ? value.BytesDone * 10 / value.BytesTotal : -1;
                _out.WriteLine($"  [{Name(value.Phase)}] {Detail(value)}".TrimEnd());
                return;
            }

            if (value.Phase is PatchPhase.Staging or PatchPhase.Downloading && value.BytesTotal > 0)
            {
                var tenth = value.BytesDone * 10 / value.BytesTotal;
                if (tenth > _lastTenth)
                {
                    _lastTenth = tenth;
                    _out.WriteLine($"  [{Name(value.Phase)}] {Detail(value)}".TrimEnd());
                }
            }
        }
    }

    public static string Name(PatchPhase phase) => phase switch
    {
        PatchPhase.Verifying => "verifying",
        PatchPhase.Staging => "staging",
        PatchPhase.Committing => "committing",
        PatchPhase.CleaningUp => "cleaning up",
        PatchPhase.Done => "done",
        PatchPhase.Downloading => "downloading",
        _ => phase.ToString(),
    };

    /// <summary>Counts, then rate and time left when the library could estimate them: "12/40 items, 3.0 MiB of 9.0 MiB, 45.2 MB/s, ETA 0:02".</summary>
    public static string Detail(PatchProgress p)
    {
        if (p.FilesTotal == 0 && p.BytesTotal == 0) return "";
        var text = p.BytesTotal > 0
            ? $"{p.FilesDone}/{p.FilesTotal} items, {ToolOptions.Bytes(p.BytesDone)} of {ToolOptions.Bytes(p.BytesTotal)}"
            : $"{p.FilesDone}/{p.FilesTotal} items";
        return text + Rate(p);
    }

    /// <summary>", 45.2 MB/s, ETA 0:02" when the rate is known; empty otherwise.</summary>
    public static string Rate(PatchProgress p)
    {
        if (p.BytesPerSecond <= 0) return "";
        var rate = (p.BytesPerSecond / 1e6).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " MB/s";
        return p.Remaining is { } left ? $", {rate}, ETA {Eta(left)}" : $", {rate}";
    }

    private static string Eta(TimeSpan left) =>
        left.TotalHours >= 1
            ? $"{(int)left.TotalHours}:{left.Minutes:00}:{left.Seconds:00}"
            : $"{left.Minutes}:{left.Seconds:00}";
}

/// <summary>A Spectre.Console progress bar, for a person at a terminal.</summary>
internal sealed class SpectreProgress : IProgress<PatchProgress>
{
    private readonly ProgressTask _task;

    public SpectreProgress(ProgressTask task) => _task = task;

    public void Report(PatchProgress value)
    {
        // ProgressTask locks internally. The bar is the whole apply's fraction, which never goes back; the description
        // says the phase with its counts, rate and time left (markup-escaped: it holds brackets of its own).
        _task.Description = Markup.Escape($"{PlainProgress.Name(value.Phase),-11} {PlainProgress.Detail(value)}".TrimEnd());
        _task.Value = value.Fraction * _task.MaxValue;
    }

    /// <summary>Runs <paramref name="body"/> under a progress bar on the real console.</summary>
    public static Task<T> Run<T>(Func<IProgress<PatchProgress>, Task<T>> body) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async progressContext =>
            {
                var task = progressContext.AddTask(PlainProgress.Name(PatchPhase.Verifying), maxValue: 1000);
                var result = await body(new SpectreProgress(task)).ConfigureAwait(false);
                task.Value = task.MaxValue;
                task.StopTask();
                return result;
            });
}
