namespace Patching.Update;

/// <summary>
/// What a caller receives of the <see cref="PatchPhase.Downloading"/> phase: counts that never go back (pieces finish
/// out of order on several connections) and, once the phase has run 300 ms, its average rate since it began and the
/// time left at that rate. <see cref="PatchProgress.Fraction"/> stays 0: it measures the transaction that follows.
/// </summary>
internal sealed class DownloadProgress : IProgress<PatchProgress>
{
    /// <summary>How long the phase runs before its rate is reported, as for the transaction's phases.</summary>
    private static readonly TimeSpan RateAfter = TimeSpan.FromMilliseconds(300);

    private readonly IProgress<PatchProgress> _sink;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly long _started;
    private int _done;
    private long _bytes;

    private DownloadProgress(IProgress<PatchProgress> sink, TimeProvider time)
    {
        _sink = sink;
        _time = time;
        _started = time.GetTimestamp();
    }

    /// <summary>A tracker for one download, started now; null when nobody listens.</summary>
    public static IProgress<PatchProgress>? Start(IProgress<PatchProgress>? sink, TimeProvider time) =>
        sink is null ? null : new DownloadProgress(sink, time);

    public void Report(PatchProgress value)
    {
        lock (_gate)
        {
            _done = Math.Max(_done, value.FilesDone);
            _bytes = Math.Max(_bytes, value.BytesDone);
            var elapsed = _time.GetElapsedTime(_started);
            double rate = 0;
            TimeSpan? remaining = null;
            if (elapsed >= RateAfter && _bytes > 0)
            {
                rate = _bytes / elapsed.TotalSeconds;
                remaining = TimeSpan.FromSeconds(Math.Max(0, value.BytesTotal - _bytes) / rate);
            }

            _sink.Report(value with { FilesDone = _done, BytesDone = _bytes, Fraction = 0, BytesPerSecond = rate, Remaining = remaining });
        }
    }
}
