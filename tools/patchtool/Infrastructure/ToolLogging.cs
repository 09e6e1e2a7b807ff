using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace PatchTool.Infrastructure;

/// <summary>The library's <see cref="ILogger"/> for patchtool: one line per message on stderr.</summary>
internal static class ToolLogging
{
    /// <summary>
    /// Warning and above by default; Information with <c>--verbose</c>. Dispose to flush. The console logger is
    /// built on the first message, not before: building it costs more than <c>patchtool recover</c> itself
    /// on a clean install, and most runs log nothing.
    /// </summary>
    public static ILoggerFactory Create(bool verbose)
    {
        var minimum = verbose ? LogLevel.Information : LogLevel.Warning;
        return new DeferredLoggerFactory(minimum, () => LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimum)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.IncludeScopes = false;
                o.ColorBehavior = LoggerColorBehavior.Default;
            })));
    }

    private sealed class DeferredLoggerFactory(LogLevel minimum, Func<ILoggerFactory> create) : ILoggerFactory
    {
        private readonly Lazy<ILoggerFactory> _inner = new(create);

        private LogLevel Minimum { get; } = minimum;

        public ILogger CreateLogger(string categoryName) => new DeferredLogger(this, categoryName);

        public void AddProvider(ILoggerProvider provider) => _inner.Value.AddProvider(provider);

        public void Dispose()
        {
            if (_inner.IsValueCreated) _inner.Value.Dispose();
        }

        private sealed class DeferredLogger(DeferredLoggerFactory owner, string category) : ILogger
        {
            private ILogger? _logger;

            private ILogger Logger => _logger ??= owner._inner.Value.CreateLogger(category);

            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => IsEnabled(LogLevel.Critical) ? Logger.BeginScope(state) : null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= owner.Minimum;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) Logger.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
