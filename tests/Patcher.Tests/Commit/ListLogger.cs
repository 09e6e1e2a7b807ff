using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Patching.Tests.Commit;

/// <summary>Collects formatted log lines and event ids so tests can check which layer the library says succeeded, and which named events it logs.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<int> _ids = new();

    public IReadOnlyList<string> Lines => _lines.ToList();

    public IReadOnlyList<int> Ids => _ids.ToList();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _ids.Enqueue(eventId.Id);
        _lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
