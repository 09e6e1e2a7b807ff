using System.CommandLine;
using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool rollback --target DIR</c>: restores the version kept by <c>apply --keep-previous</c> (<see cref="Patcher.Rollback"/>).</summary>
internal sealed class RollbackCommand : IToolCommand
{
    private readonly Option<string> _target = ToolOptions.Target("The install directory");
    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("rollback", "Restore the previous version kept by 'apply --keep-previous'") { _target, _stateDir, _json };
        command.SetAction(pr =>
        {
            var s = new Settings(pr.GetValue(_target)!, pr.GetValue(_stateDir), pr.GetValue(_json), pr.GetValue(global.Verbose));
            return CommandRunner.Run(ctx, s.Json, s.Verbose, () => Run(ctx, s));
        });
        return command;
    }

    internal sealed record Settings(string Target, string? StateDir, bool Json, bool Verbose);

    internal static int Run(ToolContext ctx, Settings s)
    {
        using var loggers = ToolLogging.Create(s.Verbose);
        var target = Path.GetFullPath(s.Target);
        var result = Patcher.Rollback(target, EngineOptions.Create(loggers, s.StateDir));
        var busy = result.Status == ApplyStatus.Busy;
        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new ApplyDocument(!busy, result.Status.ToString(), result.FromVersion, result.ToVersion,
                result.TransactionId, result.Strategy.ToString(), result.Resumed, result.FilesWritten, result.FilesReused, result.BytesWritten));
        }
        else if (!busy)
        {
            ctx.Out.WriteLine($"rolled back {target} from {result.FromVersion ?? "(unknown)"} to {result.ToVersion} (transaction {result.TransactionId})");
        }

        if (!busy) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(PatchErrorCode.Busy, $"another process is patching '{target}'; nothing was changed, try again later", null));
        return ExitCodes.Busy;
    }
}
