using Microsoft.Extensions.Logging;
using Patching;

namespace PatchTool.Infrastructure;

/// <summary>
/// Builds the <see cref="PatcherOptions"/> the engine commands (apply, recover, status, rollback, verify-install)
/// pass to the facade. These commands are thin: every decision (install missing, busy, ...) is the engine's.
/// </summary>
internal static class EngineOptions
{
    public const string LoggerCategory = "Patcher";

    public static PatcherOptions Create(ILoggerFactory loggers, string? stateDir) => new()
    {
        Logger = loggers.CreateLogger(LoggerCategory),
        StateDirectory = stateDir is null ? null : Path.GetFullPath(stateDir),
    };
}
