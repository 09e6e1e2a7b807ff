using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool rollback --target DIR</c>: restores the version kept by <c>apply --keep-previous</c> (<see cref="Patcher.Rollback"/>).</summary>
internal sealed class RollbackCommand() : InstallCommand("rollback", "Restore the previous version kept by 'apply --keep-previous'", "The install directory")
{
    protected override int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct)
    {
        using var loggers = ToolLogging.Create(s.Verbose);
        var target = Path.GetFullPath(s.Target);
        var result = Patcher.Rollback(target, EngineOptions.Create(loggers, s.StateDir));
        var busy = result.Status == ApplyStatus.Busy;
        if (s.Json)
            JsonOutput.Write(ctx.Out, ApplyCommand.Document(result, target));
        else if (!busy)
        {
            ctx.Out.WriteLine($"rolled back {target} from {result.FromVersion ?? "(unknown)"} to {result.ToVersion} (transaction {result.TransactionId})");
        }

        if (!busy) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(PatchErrorCode.Busy, ApplyCommand.BusyError(target).Message, null));
        return ExitCodes.Busy;
    }
}
