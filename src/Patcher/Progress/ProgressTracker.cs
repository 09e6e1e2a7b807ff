namespace Patching.Progress;

/// <summary>
/// Turns the engine's raw reports into what a caller can trust: the phase only moves forward, done counts and the
/// overall fraction never go back, and each report carries the rate and time left. Code anywhere in the pipeline just
/// reports what it counts (<c>progress?.Report(new PatchProgress(phase, done, total, bytes, bytesTotal))</c>, with
/// <see cref="PatchProgress.CurrentItem"/> when it knows the file); this class joins the steps of a phase.
/// </summary>
/// <remarks>
/// A phase may be reported by several steps with their own counters (staging receives the blobs, then builds the
/// files). A report whose item total differs from the step before, or whose count restarts at 0, begins a new step:
/// the items already done are carried over and the phase's item total grows by the new step's. Bytes are taken as the
/// largest count seen in the phase, as every step counts the phase's bytes from its start. Reports from several worker
/// threads are serialised here, so the caller's <see cref="IProgress{T}"/> sees one report at a time, in order.
/// </remarks>
internal sealed class ProgressTracker : IProgress<PatchProgress>
{
    /// <summary>Each phase's share of <see cref="PatchProgress.Fraction"/>: where it starts, and where the next does.</summary>
    private static readonly double[] PhaseStart = [0.0, 0.05, 0.90, 0.97, 1.0];

    /// <summary>How long a phase runs before its rate is reported: earlier, one fast buffer makes a wild estimate.</summary>
    private static readonly TimeSpan RateAfter = TimeSpan.FromMilliseconds(300);

    private readonly IProgress<PatchProgress> _sink;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private bool _started;
    private PatchPhase _phase;
    private long _phaseStarted;
    private int _stepTotal = -1;
    private int _stepDone;
    private int _itemOffset;
    private int _items;
    private int _itemsTotal;
    private long _bytes;
    private long _bytesTotal;
    private double _fraction;

    private ProgressTracker(IProgress<PatchProgress> sink, TimeProvider time)
    {
        _sink = sink;
        _time = time;
    }

    /// <summary>The tracker in front of <paramref name="sink"/>; null when nobody listens (no work at all per report).</summary>
    public static IProgress<PatchProgress>? Wrap(IProgress<PatchProgress>? sink, TimeProvider time) =>
        sink is null or ProgressTracker ? sink : new ProgressTracker(sink, time);

    public void Report(PatchProgress value)
    {
        lock (_gate)
        {
            // A worker's late report of a phase that has ended says nothing new.
            if (_started && value.Phase < _phase) return;
            var now = _time.GetTimestamp();
            if (!_started || value.Phase > _phase) BeginPhase(value.Phase, now);

            // A new step of the same phase: another item total, or a count that starts over.
            if (value.FilesTotal != _stepTotal || (value.FilesDone == 0 && _stepDone > 0))
            {
                if (_stepTotal >= 0) _itemOffset += _stepDone;
                _stepTotal = value.FilesTotal;
                _stepDone = 0;
            }

            _stepDone = Math.Max(_stepDone, value.FilesDone);
            _items = Math.Max(_items, _itemOffset + value.FilesDone);
            _itemsTotal = Math.Max(Math.Max(_itemsTotal, _itemOffset + value.FilesTotal), _items);
            _bytes = Math.Max(_bytes, value.BytesDone);
            _bytesTotal = Math.Max(Math.Max(_bytesTotal, value.BytesTotal), _bytes);

            double within = _bytesTotal > 0 ? (double)_bytes / _bytesTotal : _itemsTotal > 0 ? (double)_items / _itemsTotal : 0;
            var index = (int)_phase;
            var fraction = _phase == PatchPhase.Done ? 1.0 : PhaseStart[index] + ((PhaseStart[index + 1] - PhaseStart[index]) * Math.Min(within, 1.0));
            // Just short of 1 until Done: a bar at 100% while the journal's last row is still being written would lie.
            if (_phase != PatchPhase.Done) fraction = Math.Min(fraction, 0.999);
            _fraction = Math.Max(_fraction, fraction);

            var elapsed = _time.GetElapsedTime(_phaseStarted, now);
            double rate = 0;
            TimeSpan? remaining = null;
            if (_bytesTotal > 0 && elapsed >= RateAfter && _bytes > 0)
            {
                rate = _bytes / elapsed.TotalSeconds;
                remaining = TimeSpan.FromSeconds((_bytesTotal - _bytes) / rate);
            }

            _sink.Report(new PatchProgress(_phase, _items, _itemsTotal, _bytes, _bytesTotal)
            {
                Fraction = _fraction,
                CurrentItem = value.CurrentItem,
                BytesPerSecond = rate,
                Remaining = remaining,
            });
        }
    }

    private void BeginPhase(PatchPhase phase, long now)
    {
        _started = true;
        _phase = phase;
        _phaseStarted = now;
        _stepTotal = -1;
        _stepDone = 0;
        _itemOffset = 0;
        _items = 0;
        _itemsTotal = 0;
        _bytes = 0;
        _bytesTotal = 0;
    }
}
