namespace Patching.Sources;

/// <summary>
/// A token bucket shared by every request of one <see cref="HttpSource"/>: <c>rate</c> bytes per second, at most a
/// quarter second's worth saved up. A reader takes tokens for the bytes it has just received and waits when the bucket
/// is in debt; the socket's buffers then fill and TCP slows the server down, so the transfer runs at the rate without the
/// source pacing requests itself. Taking may leave the bucket negative (a reservation), which makes concurrent readers
/// queue in turn instead of racing for each refill. Time comes from a <see cref="TimeProvider"/>, so tests run it on a
/// fake clock.
/// </summary>
internal sealed class HttpSourceBandwidth
{
    private readonly object _gate = new();
    private readonly long _rate;
    private readonly double _burst;
    private readonly TimeProvider _time;
    private double _tokens;
    private long _stamp;

    public HttpSourceBandwidth(long bytesPerSecond, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesPerSecond, 1);
        _rate = bytesPerSecond;
        _burst = Math.Max(1, bytesPerSecond / 4.0);
        _time = time;
        _tokens = _burst;
        _stamp = time.GetTimestamp();
    }

    /// <summary>Accounts for <paramref name="bytes"/> received, waiting until the rate allows them.</summary>
    public async ValueTask TakeAsync(long bytes, CancellationToken ct)
    {
        TimeSpan wait;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + _time.GetElapsedTime(_stamp, now).TotalSeconds * _rate);
            _stamp = now;
            _tokens -= bytes;
            wait = _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _rate);
        }

        if (wait > TimeSpan.Zero) await Task.Delay(wait, _time, ct).ConfigureAwait(false);
    }
}
