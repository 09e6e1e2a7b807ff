namespace Patching.Tests.TestHelpers;

/// <summary>A clock that always says the same time (deterministic manifests, expiry tests).</summary>
internal sealed class FixedTimeProvider : TimeProvider
{
    /// <summary>The time the golden manifests were built at.</summary>
    public static readonly DateTimeOffset GoldenTime = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly DateTimeOffset _now;

    public FixedTimeProvider(DateTimeOffset now) => _now = now;

    public static FixedTimeProvider Golden { get; } = new(GoldenTime);

    public override DateTimeOffset GetUtcNow() => _now;
}
