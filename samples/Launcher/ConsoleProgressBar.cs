using System.Globalization;
using Patching;

namespace PatcherSample;

/// <summary>
/// One line redrawn in place at a terminal (<c>[#####-----]  42% staging  12.3 MB/s  ETA 0:05</c>, at most ten times
/// a second), or a line per phase when the output is a file or a pipe. Patcher's reports never go back, so the bar
/// only moves forward.
/// </summary>
public sealed class ConsoleProgressBar(TextWriter output, bool interactive) : IProgress<PatchProgress>
{
    private readonly Lock _gate = new();
    private PatchPhase? _phase;
    private long _lastDraw;

    public void Report(PatchProgress value)
    {
        lock (_gate)
        {
            var newPhase = value.Phase != _phase;
            _phase = value.Phase;
            if (!interactive)
            {
                if (newPhase) output.WriteLine($"  {Name(value.Phase)}");
                return;
            }

            var now = Environment.TickCount64;
            if (!newPhase && value.Phase != PatchPhase.Done && now - _lastDraw < 100) return;
            _lastDraw = now;
            const int width = 30;
            var filled = (int)(value.Fraction * width);
            var rate = value.BytesPerSecond > 0 ? $"  {(value.BytesPerSecond / 1e6).ToString("0.0", CultureInfo.InvariantCulture)} MB/s" : "";
            var eta = value.Remaining is { } left ? $"  ETA {(int)left.TotalMinutes}:{left.Seconds:00}" : "";
            output.Write($"\r[{new string('#', filled)}{new string('-', width - filled)}] {value.Fraction,4:P0} {Name(value.Phase),-11}{rate}{eta}".PadRight(78));
            if (value.Phase == PatchPhase.Done) output.WriteLine();
        }
    }

    private static string Name(PatchPhase phase) => phase switch
    {
        PatchPhase.Verifying => "verifying",
        PatchPhase.Staging => "staging",
        PatchPhase.Committing => "committing",
        PatchPhase.CleaningUp => "cleaning up",
        PatchPhase.Done => "done",
        _ => phase.ToString(),
    };
}
