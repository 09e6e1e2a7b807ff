using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool recover --target DIR</c>: finishes or undoes an interrupted transaction (<see cref="Patcher.Recover"/>).</summary>
internal sealed class RecoverCommand() : InstallCommand("recover", "Finish or undo an interrupted transaction (cheap when nothing is pending)", "The install directory to recover", trusted: true)
{
    protected override int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct)
    {
        using var loggers = ToolLogging.Create(s.Verbose);
        var target = Path.GetFullPath(s.Target);
        // Without keys an interrupted transaction is only ever undone: completing it needs its manifest to verify again.
        var options = EngineOptions.Create(loggers, s.StateDir) with { TrustedKeys = ToolOptions.ReadKeyFiles(s.Trust, "--trust") };
        var result = Patcher.Recover(target, options);
        var busy = result.Outcome == RecoveryOutcome.Busy;
        var busyError = new ErrorInfo((int)PatchErrorCode.Busy, nameof(PatchErrorCode.Busy),
            $"another process holds the lock on '{target}' (an apply is running); nothing was done", target);
        if (s.Json)
            JsonOutput.Write(ctx.Out, new RecoverDocument(!busy, result.Outcome.ToString(), result.TransactionId, result.InstalledVersion) { Error = busy ? busyError : null });
        else if (!busy)
            ctx.Out.WriteLine(Describe(result, target));

        // Old files an earlier apply left behind are deleted in the background; a process that exits now would leave
        // them again. Already complete when there were none (the usual start-up case).
        result.Cleanup.GetAwaiter().GetResult();
        if (!busy) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(PatchErrorCode.Busy, busyError.Message, null));
        return ExitCodes.Busy;
    }

    internal static string Describe(RecoveryResult r, string target) => r.Outcome switch
    {
        RecoveryOutcome.NothingPending => $"nothing to recover in {target}{Installed(r)}",
        RecoveryOutcome.RolledForward => $"recovered {target}: interrupted transaction {r.TransactionId} completed{Installed(r)}",
        RecoveryOutcome.RolledBack => $"recovered {target}: interrupted transaction {r.TransactionId} undone{Installed(r)}",
        _ => $"{r.Outcome}",
    };

    private static string Installed(RecoveryResult r) => r.InstalledVersion is null ? "" : $"; installed version {r.InstalledVersion}";
}
