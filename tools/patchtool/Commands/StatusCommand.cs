using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool status --target DIR [--json]</c>: installed version and pending transaction (<see cref="Patcher.Status"/>).</summary>
internal sealed class StatusCommand() : InstallCommand("status", "Show the installed version and any pending transaction, changing nothing", "The install directory")
{
    protected override int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct)
    {
        using var loggers = ToolLogging.Create(s.Verbose);
        var target = Path.GetFullPath(s.Target);
        var status = Patcher.Status(target, EngineOptions.Create(loggers, s.StateDir));
        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new StatusDocument(true, target, status.Product, status.InstalledVersion,
                status.PendingTransactionId, PhaseText(status.PendingState), status.PreviousVersion) { UpdateInProgress = status.UpdateInProgress, ReplacedInstallVersion = status.ReplacedInstallVersion });
            return ExitCodes.Ok;
        }

        Print(ctx.Out, status, target);
        return ExitCodes.Ok;
    }

    internal static void Print(TextWriter o, InstallStatus status, string target)
    {
        o.WriteLine($"install      {target}");
        o.WriteLine($"product      {status.Product ?? "(unknown: no patch applied by Patcher yet)"}");
        o.WriteLine(status.ReplacedInstallVersion is { } replaced
            ? $"version      (unknown: this is not the directory Patcher installed {replaced} in; it was replaced, restored or copied back. The next apply checks its files against the patch's base)"
            : $"version      {status.InstalledVersion ?? "(unknown)"}");
        o.WriteLine(status switch
        {
            { UpdateInProgress: true } => $"pending      an update is in progress (another process is applying a patch{(status.PendingTransactionId is null ? "" : $", transaction {status.PendingTransactionId}")}); wait for it",
            { PendingTransactionId: null } => "pending      none",
            _ => $"pending      transaction {status.PendingTransactionId} in state {PhaseText(status.PendingState)} was interrupted (run: patchtool recover --target DIR)",
        });
        o.WriteLine($"previous     {status.PreviousVersion ?? "none kept"}");
    }

    /// <summary>
    /// The phase as scripts read it in <c>--json</c> and as the journal stores it: lower case, words joined by '-'
    /// (<c>backup-complete</c>).
    /// </summary>
    internal static string? PhaseText(PendingPhase? phase) =>
        phase is { } p ? System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(p.ToString()) : null;
}
