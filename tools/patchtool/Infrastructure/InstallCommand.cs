using System.CommandLine;

namespace PatchTool.Infrastructure;

/// <summary>What every command acting on one install directory is given.</summary>
internal sealed record InstallSettings(string Target, string? StateDir, bool Json, bool Verbose);

/// <summary>
/// The shape shared by <c>recover</c>, <c>status</c>, <c>rollback</c> and <c>verify-install</c>: the options
/// <c>--target</c>, <c>--state-dir</c> and <c>--json</c>, and one runner that receives them.
/// </summary>
internal abstract class InstallCommand(string name, string description, string targetDescription) : IToolCommand
{
    private readonly Option<string> _target = ToolOptions.Target(targetDescription);
    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command(name, description) { _target, _stateDir, _json };
        command.SetAction((pr, ct) =>
        {
            var s = new InstallSettings(pr.GetValue(_target)!, pr.GetValue(_stateDir), pr.GetValue(_json), pr.GetValue(global.Verbose));
            return Task.FromResult(CommandRunner.Run(ctx, s.Json, s.Verbose, () => Execute(ctx, s, ct)));
        });
        return command;
    }

    protected abstract int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct);
}
