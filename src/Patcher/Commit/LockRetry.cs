using System.Globalization;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Polly;
using Polly.Retry;

namespace Patching.Commit;

/// <summary>Names of the layers of the layered replace, as logged and journaled.</summary>
internal static class ReplaceLayer
{
    public const string PosixRename = "0 (POSIX-semantics rename)";
    public const string MoveFileEx = "1 (rename with backoff)";
    public const string AfterGc = "2 (after a GC pass, longer delays)";
    public const string RenameAside = "3 (target renamed aside)";
}

/// <summary>
/// Runs one file step of the layered commit through the retry layers, within a time budget per file
/// (<see cref="PatcherOptions.FileLockTimeout"/>, else <c>PATCHER_FILE_LOCK_TIMEOUT</c>, else 30 s). Delays go
/// through Polly.Core with the options' <see cref="TimeProvider"/>, so tests advance a fake clock instead of sleeping.
/// Layers: 0 once (where offered), 1 up to 10% of the budget with exponential backoff, 2 after a GC pass with
/// longer delays up to 25% (or all of it when there is no layer 3), 3 for the rest: a running executable, which
/// only layer 3 can replace, waits a quarter of the budget.
/// </summary>
internal sealed class LockRetry
{
    public const string EnvironmentVariable = "PATCHER_FILE_LOCK_TIMEOUT";
    public static readonly TimeSpan DefaultBudget = TimeSpan.FromSeconds(30);
    private const double MaxBudgetMs = 24 * 3600 * 1000.0;

    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly bool _accessDeniedMayBeLock;
    private readonly ResiliencePipeline _pipeline;

    public LockRetry(TimeSpan budget, TimeProvider time, ILogger log, bool accessDeniedMayBeLock)
    {
        Budget = budget < TimeSpan.Zero ? TimeSpan.Zero : budget;
        _time = time;
        _log = log;
        _accessDeniedMayBeLock = accessDeniedMayBeLock;
        _pipeline = BuildPipeline();
    }

    public TimeSpan Budget { get; }

    /// <summary>The seam reports Win32 error numbers (Windows, or the lock simulation).</summary>
    public bool Win32Semantics => _accessDeniedMayBeLock;

    /// <summary>The seam's error numbering decides whether access denied is retried (<see cref="IFileOps.ReportsWin32Errors"/>).</summary>
    public static LockRetry For(IFileOps fs, PatcherOptions options, string installDir) =>
        new(ResolveBudget(options, options.Logger), options.TimeProvider, options.Logger, fs.ReportsWin32Errors) { Root = installDir };

    /// <summary>The install directory the relative paths in messages are under (for the Restart Manager lookup).</summary>
    public string? Root { get; init; }

    /// <summary>Options first, then the environment variable, then 30 s. A malformed variable is reported and ignored.</summary>
    public static TimeSpan ResolveBudget(PatcherOptions options, ILogger log)
    {
        if (options.FileLockTimeout is { } fromOptions) return fromOptions;
        var text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(text)) return DefaultBudget;
        if (TryParseDuration(text, out var parsed)) return parsed;
        log.LogWarning("{Variable}='{Value}' is not a duration such as 30s or 500ms; using {Default}", EnvironmentVariable, text, DefaultBudget);
        return DefaultBudget;
    }

    /// <summary>Parses <c>500ms</c>, <c>30s</c>, <c>2m</c>, <c>1h</c>, a bare number of seconds, or <c>hh:mm:ss</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        var t = text.Trim().ToLowerInvariant();
        (string Suffix, double Scale)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, scale) in units)
        {
            if (!t.EndsWith(suffix, StringComparison.Ordinal)) continue;
            // Bounded to a day: a budget is how long one file may stay locked, and larger values overflow TimeSpan.
            if (!double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || !(n >= 0) || n * scale > MaxBudgetMs) return false;
            value = TimeSpan.FromMilliseconds(n * scale);
            return true;
        }

        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && seconds * 1000 <= MaxBudgetMs)
        {
            value = TimeSpan.FromSeconds(seconds);
            return true;
        }

        return TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    /// <summary>Whether an error may go away by itself: a sharing or lock violation, or (Win32) access denied.</summary>
    public bool IsLock(PatcherException ex) =>
        ex.Code == PatchErrorCode.FileLocked || (_accessDeniedMayBeLock && ex.Code == PatchErrorCode.AccessDenied && NativeErrors.IsAccessDeniedWin32(ex.NativeError));

    /// <summary>
    /// Runs <paramref name="step"/> until it succeeds or the budget is spent. <paramref name="layer0"/> (may be null)
    /// is tried once first and returns false when not available; <paramref name="layer3"/> (may be null) is the
    /// rename-aside fallback, which must undo itself when it fails. Returns the name of the layer that succeeded.
    /// Errors that are not locks propagate at once.
    /// </summary>
    public string Run(string path, string operation, Func<bool>? layer0, Action step, Action? layer3)
    {
        var start = _time.GetTimestamp();
        PatcherException? last = null;
        var attempts = 0;
        if (layer0 is not null)
        {
            // Counted only when it was tried: where the system cannot (false), no attempt was made.
            try
            {
                if (layer0()) return Succeeded(path, operation, ReplaceLayer.PosixRename, ++attempts, start);
            }
            catch (PatcherException ex) when (IsLock(ex))
            {
                attempts++;
                last = ex;
                _log.LogDebug("{Path}: layer 0 refused ({Error})", path, ex.Message);
            }
        }

        var b = Budget.TotalMilliseconds;
        var l1Delay = TimeSpan.FromMilliseconds(Math.Clamp(b / 200, 1, 100));
        if (Attempt(ReplaceLayer.MoveFileEx, step, start, Budget * 0.1, l1Delay, TimeSpan.FromMilliseconds(Math.Max(1, b / 20)), ref last, ref attempts))
            return Succeeded(path, operation, ReplaceLayer.MoveFileEx, attempts, start);

        // Our own handles are the one cause we can remove ourselves: a stream not disposed yet, closed by its finalizer.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var l2Delay = TimeSpan.FromMilliseconds(Math.Clamp(b / 40, 5, 2000));
        if (Attempt(ReplaceLayer.AfterGc, step, start, layer3 is null ? Budget : Budget * 0.25, l2Delay, TimeSpan.FromMilliseconds(Math.Max(5, b / 8)), ref last, ref attempts))
            return Succeeded(path, operation, ReplaceLayer.AfterGc, attempts, start);

        if (layer3 is not null && Attempt(ReplaceLayer.RenameAside, layer3, start, Budget, l2Delay, TimeSpan.FromMilliseconds(Math.Max(5, b / 8)), ref last, ref attempts))
            return Succeeded(path, operation, ReplaceLayer.RenameAside, attempts, start);

        throw Locked(path, operation, last, attempts);
    }

    /// <summary>What one layer's retries need to know, carried through the one pipeline in its context.</summary>
    private sealed class LayerRun
    {
        public required string Layer { get; init; }
        public required long Start { get; init; }
        public required TimeSpan Until { get; init; }
        public required TimeSpan Delay { get; init; }
        public required TimeSpan MaxDelay { get; init; }
    }

    private static readonly ResiliencePropertyKey<LayerRun> RunKey = new("Patching.LockRetry.Layer");

    /// <summary>
    /// The one retry pipeline of this budget, clock and log: it retries a lock until the layer's share of the budget is
    /// spent, with a delay that doubles from the layer's first delay up to its largest, never past the share's end.
    /// </summary>
    private ResiliencePipeline BuildPipeline() => new ResiliencePipelineBuilder { TimeProvider = _time }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is PatcherException ex && IsLock(ex)
                && _time.GetElapsedTime(args.Context.Properties.GetValue(RunKey, null!).Start) < args.Context.Properties.GetValue(RunKey, null!).Until),
            MaxRetryAttempts = int.MaxValue,
            DelayGenerator = args =>
            {
                var run = args.Context.Properties.GetValue(RunKey, null!);
                var wanted = TimeSpan.FromTicks(Math.Min(run.MaxDelay.Ticks, run.Delay.Ticks * (1L << Math.Min(args.AttemptNumber, 20))));
                var left = run.Until - _time.GetElapsedTime(run.Start);
                return ValueTask.FromResult<TimeSpan?>(left <= TimeSpan.Zero ? TimeSpan.Zero : (wanted < left ? wanted : left));
            },
            OnRetry = args =>
            {
                _log.LogDebug("Locked: layer {Layer} retry {Attempt} in {Delay} ms ({Error})", args.Context.Properties.GetValue(RunKey, null!).Layer,
                    args.AttemptNumber + 1, args.RetryDelay.TotalMilliseconds, args.Outcome.Exception?.Message);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    private bool Attempt(string layer, Action step, long start, TimeSpan until, TimeSpan delay, TimeSpan maxDelay, ref PatcherException? last, ref int attempts)
    {
        // The first try runs outside the pipeline: nearly every step succeeds at once, and a pipeline run costs a context
        // and a few allocations. When it meets a lock, the pipeline replays that failure as its own first execution, so
        // retries, delays and counts are those of a run that started in the pipeline.
        PatcherException? firstFailure;
        try
        {
            step();
            attempts++;
            return true;
        }
        catch (PatcherException ex) when (IsLock(ex))
        {
            firstFailure = ex;
        }

        var lastSeen = last;
        var count = 0;
        var context = ResilienceContextPool.Shared.Get();
        context.Properties.Set(RunKey, new LayerRun { Layer = layer, Start = start, Until = until, Delay = delay, MaxDelay = maxDelay });
        try
        {
            _pipeline.Execute(_ =>
            {
                count++;
                try
                {
                    if (firstFailure is { } replayed)
                    {
                        firstFailure = null;
                        throw replayed;
                    }

                    step();
                }
                catch (PatcherException ex) when (IsLock(ex))
                {
                    lastSeen = ex;
                    throw;
                }
            }, context);
            attempts += count;
            return true;
        }
        catch (PatcherException ex) when (IsLock(ex))
        {
            attempts += count;
            last = lastSeen ?? ex;
            return false;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>
    /// Logs the layer that succeeded: at Information when it took more than one attempt (a lock came and went, or a later
    /// layer was needed), at Debug when the first try of layer 0 or 1 did it, which is every file of an ordinary update
    /// (1,394 lines per apply of the benchmark's main patch).
    /// </summary>
    private string Succeeded(string path, string operation, string layer, int attempts, long start)
    {
        var level = attempts == 1 && layer is ReplaceLayer.PosixRename or ReplaceLayer.MoveFileEx ? LogLevel.Debug : LogLevel.Information;
        _log.Log(level, PatcherLogEvents.LayerUsed, "{Operation} '{Path}': layer {Layer} succeeded after {Attempts} attempt(s), {Elapsed} ms", operation, path, layer, attempts,
            (long)_time.GetElapsedTime(start).TotalMilliseconds);
        return layer;
    }

    private PatcherException Locked(string path, string operation, PatcherException? last, int attempts)
    {
        var native = last?.NativeError ?? 0;
        var what = NativeErrors.DescribeLock(native, _accessDeniedMayBeLock);
        // The Restart Manager needs a full path; steps name files relative to the install.
        var holders = FileOps.LockHolders(Root is null || Path.IsPathRooted(path) ? path : RelativePath.Join(Root, path));
        var by = holders.Count > 0 ? "; held by " + string.Join(", ", holders) : "";
        var message = $"'{path}' stayed locked for {Budget.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s ({operation}; error {native}: {what}{by}; {attempts} attempts through every layer)";
        _log.LogError(PatcherLogEvents.FileLocked, "{Message}", message);
        return new PatcherException(PatchErrorCode.FileLocked, message, path, last) { NativeError = native };
    }
}
