using System.CommandLine;
using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool status --target DIR [--json]</c>: installed version and pending transaction (<see cref="Patcher.Status"/>).</summary>
internal sealed class StatusCommand : IToolCommand
{
    private readonly Option<string> _target = ToolOptions.Target("The install directory");
    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("status", "Show the installed version and any pending transaction, changing nothing") { _target, _stateDir, _json };
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
        var status = Patcher.Status(target, EngineOptions.Create(loggers, s.StateDir));
        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new StatusDocument(true, target, status.Product, status.InstalledVersion,
                status.PendingTransactionId, status.PendingState, status.PreviousVersion));
            return ExitCodes.Ok;
        }

        Print(ctx.Out, status, target);
        return ExitCodes.Ok;
    }

    internal static void Print(TextWriter o, InstallStatus status, string target)
    {
        o.WriteLine($"install      {target}");
        o.WriteLine($"product      {status.Product ?? "(unknown: no patch applied by Patcher yet)"}");
        o.WriteLine($"version      {status.InstalledVersion ?? "(unknown)"}");
        o.WriteLine(status.PendingTransactionId is null
            ? "pending      none"
            : $"pending      transaction {status.PendingTransactionId} in state {status.PendingState} (run: patchtool recover --target DIR)");
        o.WriteLine($"previous     {status.PreviousVersion ?? "none kept"}");
    }
}
