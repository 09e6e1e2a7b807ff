using System.CommandLine;

namespace PatchTool.Infrastructure;

/// <summary>What every command acting on one install directory is given.</summary>
internal sealed record InstallSettings(string Target, string? StateDir, bool Json, bool Verbose)
{
    /// <summary>The <c>--trust</c> key files, for the commands that take them (empty otherwise).</summary>
    public IReadOnlyList<string> Trust { get; init; } = [];
}

/// <summary>
/// The shape shared by <c>recover</c>, <c>status</c>, <c>rollback</c> and <c>verify-install</c>: the options
/// <c>--target</c>, <c>--state-dir</c> and <c>--json</c>, and one runner that receives them.
/// </summary>
/// <param name="cancellable">
/// True when <see cref="Execute"/> observes its token (Ctrl+C stops it). Only such a command gets an asynchronous
/// action: for one, System.CommandLine registers SIGINT and SIGTERM handlers and races the action against them,
/// a cost every <c>recover</c> (run at each start of an app) would pay for a token it never reads.
/// </param>
/// <param name="trusted">
/// True for a command that may roll an interrupted transaction forward (<c>recover</c>): it takes optional
/// <c>--trust</c> keys, because a transaction is completed only when its stored manifest verifies against them again.
/// </param>
internal abstract class InstallCommand(string name, string description, string targetDescription, bool cancellable = false, bool trusted = false) : IToolCommand
{
    private readonly Option<string> _target = ToolOptions.Target(targetDescription);
    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();
    private readonly Option<string[]> _trust = ToolOptions.Trust(required: false);

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command(name, description) { _target, _stateDir, _json };
        if (trusted) command.Options.Add(_trust);
        if (cancellable)
            command.SetAction((pr, ct) => Task.FromResult(Run(ctx, global, pr, ct)));
        else
            command.SetAction(pr => Run(ctx, global, pr, CancellationToken.None));
        return command;
    }

    protected abstract int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct);

    private int Run(ToolContext ctx, GlobalOptions global, ParseResult pr, CancellationToken ct)
    {
        var s = new InstallSettings(pr.GetValue(_target)!, pr.GetValue(_stateDir), ToolOptions.Flag(pr, _json), ToolOptions.Flag(pr, global.Verbose))
        {
            Trust = trusted ? pr.GetValue(_trust) ?? [] : [],
        };
        return CommandRunner.Run(ctx, s.Json, s.Verbose, () => Execute(ctx, s, ct));
    }
}
