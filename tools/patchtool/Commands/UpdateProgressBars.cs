using Patching;
using PatchTool.Infrastructure;
using Spectre.Console;

namespace PatchTool.Commands;

/// <summary>
/// Two Spectre.Console bars for <c>update</c> and <c>repair</c> at a terminal: the download (its bytes, with the rate and
/// time left), then the transaction (its overall fraction). Reports come from the library's worker threads;
/// <see cref="ProgressTask"/> locks internally.
/// </summary>
internal sealed class UpdateProgressBars : IProgress<PatchProgress>
{
    private readonly ProgressContext _context;
    private ProgressTask? _download;
    private ProgressTask? _install;

    private UpdateProgressBars(ProgressContext context) => _context = context;

    public void Report(PatchProgress value)
    {
        lock (_context)
        {
            if (value.Phase == PatchPhase.Downloading)
            {
                _download ??= _context.AddTask(PlainProgress.Name(PatchPhase.Downloading), maxValue: 1);
                _download.MaxValue = Math.Max(1, value.BytesTotal);
                _download.Value = value.BytesDone;
                _download.Description = Markup.Escape($"{PlainProgress.Name(value.Phase),-11} {PlainProgress.Detail(value)}".TrimEnd());
                return;
            }

            if (_download is { IsFinished: false })
            {
                _download.Value = _download.MaxValue;
                _download.StopTask();
            }

            _install ??= _context.AddTask(PlainProgress.Name(value.Phase), maxValue: 1000);
            _install.Description = Markup.Escape($"{PlainProgress.Name(value.Phase),-11} {PlainProgress.Detail(value)}".TrimEnd());
            _install.Value = value.Fraction * _install.MaxValue;
        }
    }

    /// <summary>Runs <paramref name="body"/> under the bars on the real console.</summary>
    public static Task<T> Run<T>(Func<IProgress<PatchProgress>, Task<T>> body) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async progressContext =>
            {
                var bars = new UpdateProgressBars(progressContext);
                var result = await body(bars).ConfigureAwait(false);
                lock (progressContext)
                {
                    foreach (var task in new[] { bars._download, bars._install })
                    {
                        if (task is null) continue;
                        task.Value = task.MaxValue;
                        task.StopTask();
                    }
                }

                return result;
            });

    /// <summary>
    /// Runs <paramref name="body"/> with the progress a command prints: bars at a terminal, plain lines otherwise, none
    /// with <c>--json</c> (stdout then holds one JSON document only).
    /// </summary>
    public static Task<T> With<T>(ToolContext ctx, bool json, Func<IProgress<PatchProgress>?, Task<T>> body) =>
        json ? body(null) : ctx.IsTerminal ? Run<T>(body) : body(new PlainProgress(ctx.Out));
}
