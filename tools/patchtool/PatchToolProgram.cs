using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using PatchTool.Commands;
using PatchTool.Infrastructure;
using Spectre.Console;

namespace PatchTool;

/// <summary>
/// The command-line entry point, callable in-process (tests, the demo): parse, then run one command.
/// Parse errors are usage errors (exit 2); everything else is mapped by <see cref="CommandRunner"/>.
/// </summary>
internal static class PatchToolProgram
{
    public const string Description =
        "patchtool: build, sign, verify, inspect and apply transactional patches for an installed game or app.\n\n" + ExitCodes.HelpText;

    /// <summary>Runs patchtool with <paramref name="args"/>, writing to the given writers; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) =>
        RunAsync(args, output, error).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var isTerminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        var ctx = new ToolContext(output, error, isTerminal);
        var root = CreateRoot(ctx);
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            foreach (var e in parse.Errors) error.WriteLine($"patchtool: usage error: {CommandRunner.OneLine(e.Message)}");
            var path = string.Join(' ', CommandPath(parse.CommandResult.Command));
            error.WriteLine($"patchtool: see '{path} --help'");
            return ExitCodes.Usage;
        }

        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        return await parse.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The root command with one subcommand per <see cref="IToolCommand"/>.</summary>
    internal static RootCommand CreateRoot(ToolContext ctx)
    {
        var global = new GlobalOptions();
        var root = new RootCommand(Description) { global.Verbose };
        IToolCommand[] commands =
        [
            new KeygenCommand(), new BuildCommand(), new SignCommand(), new VerifyCommand(), new InspectCommand(),
            new ApplyCommand(), new RecoverCommand(), new StatusCommand(), new RollbackCommand(), new VerifyInstallCommand(),
            new DemoCommand(),
            new PublishCommand(), new CheckCommand(), new UpdateCommand(), new RepairCommand(),
        ];
        foreach (var command in commands) root.Add(command.Create(ctx, global));
        TakeStringsAsTyped(root);

        // The built-in action prints the entry assembly's version, which in-process (tests) is the test host's.
        foreach (var version in root.Options.OfType<VersionOption>()) version.Action = new PrintVersionAction();
        return root;
    }

    /// <summary>Gives every string option in the tree the parser that takes its tokens as typed (<see cref="ToolOptions.AsTyped"/>).</summary>
    private static void TakeStringsAsTyped(Command command)
    {
        foreach (var option in command.Options)
        {
            if (option is Option<string> text) text.CustomParser ??= ToolOptions.AsTyped;
            else if (option is Option<string[]> texts) texts.CustomParser ??= ToolOptions.AsTypedList;
        }

        foreach (var subcommand in command.Subcommands) TakeStringsAsTyped(subcommand);
    }

    /// <summary>patchtool's informational version (e.g. <c>0.1.0+commit</c>).</summary>
    public static string Version =>
        typeof(PatchToolProgram).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(PatchToolProgram).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private sealed class PrintVersionAction : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Version);
            return ExitCodes.Ok;
        }
    }

    private static IEnumerable<string> CommandPath(Command command)
    {
        var names = new Stack<string>();
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
            names.Push(s is RootCommand ? "patchtool" : c.Name);
        return names;
    }
}
