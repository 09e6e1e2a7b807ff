using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace PatchTool.Infrastructure;

/// <summary>The library's <see cref="ILogger"/> for patchtool: one line per message on stderr.</summary>
internal static class ToolLogging
{
    /// <summary>Warning and above by default; Information with <c>--verbose</c>. Dispose to flush.</summary>
    public static ILoggerFactory Create(bool verbose) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = false;
            o.ColorBehavior = LoggerColorBehavior.Default;
        }));
}
