using Patching;
using Spectre.Console;

namespace PatchTool.Infrastructure;

/// <summary>
/// Progress as plain lines (stdout is a file, a pipe or a test): one line per phase, and during staging one
/// per tenth of the bytes. Reports arrive synchronously on the engine's threads, so it locks.
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

            if (value.Phase == PatchPhase.Staging && value.BytesTotal > 0)
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
        _ => phase.ToString(),
    };

    public static string Detail(PatchProgress p) =>
        p.FilesTotal == 0 && p.BytesTotal == 0
            ? ""
            : $"{p.FilesDone}/{p.FilesTotal} files, {ToolOptions.Bytes(p.BytesDone)} of {ToolOptions.Bytes(p.BytesTotal)}";
}

/// <summary>A Spectre.Console progress bar, for a person at a terminal.</summary>
internal sealed class SpectreProgress : IProgress<PatchProgress>
{
    private readonly ProgressTask _task;

    public SpectreProgress(ProgressTask task) => _task = task;

    public void Report(PatchProgress value)
    {
        // ProgressTask locks internally; descriptions are plain words, so no markup escaping is needed.
        _task.Description = PlainProgress.Name(value.Phase);
        if (value.BytesTotal > 0)
        {
            _task.MaxValue = value.BytesTotal;
            _task.Value = value.BytesDone;
        }
        else if (value.FilesTotal > 0)
        {
            _task.MaxValue = value.FilesTotal;
            _task.Value = value.FilesDone;
        }

        if (value.Phase == PatchPhase.Done) _task.Value = _task.MaxValue;
    }

    /// <summary>Runs <paramref name="body"/> under a progress bar on the real console.</summary>
    public static Task<T> Run<T>(Func<IProgress<PatchProgress>, Task<T>> body) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async progressContext =>
            {
                var task = progressContext.AddTask(PlainProgress.Name(PatchPhase.Verifying), maxValue: 1);
                var result = await body(new SpectreProgress(task)).ConfigureAwait(false);
                task.Value = task.MaxValue;
                task.StopTask();
                return result;
            });
}
