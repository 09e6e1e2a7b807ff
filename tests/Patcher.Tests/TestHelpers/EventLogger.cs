using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Patching.Tests.TestHelpers;

/// <summary>Collects the event id of every log call, so tests can check which named events the library logs.</summary>
internal sealed class EventLogger : ILogger
{
    private readonly ConcurrentQueue<int> _ids = new();

    public IReadOnlyList<int> Ids => _ids.ToList();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _ids.Enqueue(eventId.Id);
}
