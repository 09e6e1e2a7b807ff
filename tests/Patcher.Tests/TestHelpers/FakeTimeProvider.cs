namespace Patching.Tests.TestHelpers;

/// <summary>
/// A clock that only moves when something waits on it. Every timer created jumps the clock forward by its due
/// time and fires at once (on the thread pool), so code that retries with delays runs to completion without
/// sleeping, while its own reading of the clock sees the delays add up exactly. Records every delay asked for.
/// Good for single-threaded waiters (one retry loop at a time), which is all the layered commit has.
/// </summary>
internal sealed class FakeTimeProvider : TimeProvider
{
    private readonly DateTimeOffset _start;
    private readonly object _gate = new();
    private readonly List<TimeSpan> _delays = [];
    private long _elapsedTicks;

    public FakeTimeProvider(DateTimeOffset? start = null) => _start = start ?? new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>How far the clock has moved since it was created.</summary>
    public TimeSpan Elapsed => TimeSpan.FromTicks(Interlocked.Read(ref _elapsedTicks));

    /// <summary>Every timer due time requested, in order.</summary>
    public IReadOnlyList<TimeSpan> Delays
    {
        get
        {
            lock (_gate) return _delays.ToList();
        }
    }

    public override DateTimeOffset GetUtcNow() => _start + Elapsed;

    public override long GetTimestamp() => Interlocked.Read(ref _elapsedTicks);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>
    /// Runs with the timer's number (1 for the first) when a timer is created, before it fires: lets a test act at a
    /// chosen wait (end a process, cancel a token) deterministically.
    /// </summary>
    public Action<int>? OnTimer { get; set; }

    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        Interlocked.Add(ref _elapsedTicks, by.Ticks);
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (dueTime == Timeout.InfiniteTimeSpan) return new InertTimer();
        int number;
        lock (_gate)
        {
            _delays.Add(dueTime);
            number = _delays.Count;
        }

        OnTimer?.Invoke(number);
        Advance(dueTime);
        // Fire after CreateTimer returns, as a real timer would: the waiter may not have stored the timer yet.
        ThreadPool.QueueUserWorkItem(_ => callback(state));
        return new InertTimer();
    }

    private sealed class InertTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;
        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
