namespace Patching.Tests.TestHelpers;

/// <summary>
/// Records every progress report as it arrives (synchronously, on the reporting thread) and says which one, if any,
/// went back: an earlier phase, a smaller overall fraction, or, within a phase, fewer items or bytes done.
/// </summary>
internal sealed class ProgressRecorder : IProgress<PatchProgress>
{
    private readonly Lock _gate = new();
    private readonly List<PatchProgress> _reports = [];

    public IReadOnlyList<PatchProgress> Reports
    {
        get
        {
            lock (_gate) return _reports.ToList();
        }
    }

    public void Report(PatchProgress value)
    {
        lock (_gate) _reports.Add(value);
    }

    /// <summary>The first report that went back, described with the one before it; null when none did.</summary>
    public string? FirstRegression()
    {
        var reports = Reports;
        for (var i = 1; i < reports.Count; i++)
        {
            var (a, b) = (reports[i - 1], reports[i]);
            string? why = b.Phase < a.Phase ? "phase"
                : b.Fraction < a.Fraction ? "fraction"
                : b.Phase == a.Phase && b.FilesDone < a.FilesDone ? "items done"
                : b.Phase == a.Phase && b.BytesDone < a.BytesDone ? "bytes done"
                : b.FilesDone > b.FilesTotal ? "items done beyond the total"
                : b.BytesDone > b.BytesTotal ? "bytes done beyond the total"
                : null;
            if (why is not null) return $"report {i} went back ({why}): {a} F={a.Fraction} -> {b} F={b.Fraction}";
        }

        return null;
    }
}
