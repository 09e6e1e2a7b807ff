using System.CommandLine;
using System.CommandLine.Invocation;
using Patching.Tests.TestHelpers;
using PatchTool;
using PatchTool.Infrastructure;

namespace Patching.Tests.Cli;

public sealed class RootCommandTests
{
    [Test]
    public void Help_Root_ListsEveryCommandAndTheExitCodes()
    {
        var result = CliRunner.Expect(0, "--help");

        foreach (var command in new[] { "keygen", "build", "sign", "verify", "inspect", "apply", "recover", "status", "rollback", "verify-install", "demo" })
            Assert.That(result.Out, Does.Contain($"  {command} "), command);
        Assert.That(result.Out, Does.Contain("Exit codes:"));
        foreach (var line in new[] { "0  success", "1  unexpected error", "2  usage error", "3  patch refused", "4  install problem", "5  busy" })
            Assert.That(result.Out, Does.Contain(line));
    }

    [Test]
    public void Version_Root_PrintsAssemblyVersion()
    {
        var result = CliRunner.Expect(0, "--version");

        Assert.That(result.Out.Trim(), Does.StartWith("0.1.0"));
    }

    [TestCase]
    [TestCase("frobnicate")]
    [TestCase("verify", "--no-such-option")]
    [TestCase("verify", "--patch")]
    [TestCase("apply", "--patch", "p", "--target", "t", "--trust", "k", "--strategy", "sideways")]
    [TestCase("verify", "--patch", "p", "--trust", "k", "--threshold", "two")]
    public void Parse_BadCommandLine_ExitsUsageWithHint(params string[] args)
    {
        var result = CliRunner.Expect(2, args);

        Assert.That(result.Err, Does.StartWith("patchtool: usage error: "));
        Assert.That(result.Err, Does.Contain("--help"));
    }

    [Test]
    public void Help_BuildCommand_DocumentsItsOptions()
    {
        var result = CliRunner.Expect(0, "build", "--help");

        foreach (var option in new[] { "--from", "--to", "--out", "--key", "--product", "--version", "--from-version", "--expires", "--no-compress" })
            Assert.That(result.Out, Does.Contain(option));
    }

    [Test]
    public void Build_VersionOptionOnSubcommand_IsTheBuildVersionNotTheToolVersion()
    {
        using var temp = TempDir.ForCurrentTest();
        TreeFactory.Write(temp["tree"], seed: 1, files: 2);

        CliRunner.Expect(0, "build", "--format", "1", "--to", temp["tree"], "--out", temp["out"], "--product", "p", "--version", "3.2.1");

        Assert.That(File.ReadAllText(temp[Path.Join("out", "manifest.json")]), Does.Contain("\"version\": \"3.2.1\""));
    }

    [TestCase(PatchErrorCode.Unknown, ExitCodes.Unexpected)]
    [TestCase(PatchErrorCode.PatchNotFound, ExitCodes.PatchRefused)]
    [TestCase(PatchErrorCode.SignatureInvalid, ExitCodes.PatchRefused)]
    [TestCase(PatchErrorCode.WrongBaseVersion, ExitCodes.PatchRefused)]
    [TestCase(PatchErrorCode.InstallNotFound, ExitCodes.InstallProblem)]
    [TestCase(PatchErrorCode.BaseMismatch, ExitCodes.InstallProblem)]
    [TestCase(PatchErrorCode.DiskFull, ExitCodes.InstallProblem)]
    [TestCase(PatchErrorCode.FileLocked, ExitCodes.InstallProblem)]
    [TestCase(PatchErrorCode.VerifyFailed, ExitCodes.InstallProblem)]
    [TestCase(PatchErrorCode.Busy, ExitCodes.Busy)]
    public void ExitCodesFor_ErrorCode_MapsByRange(PatchErrorCode code, int exit)
    {
        Assert.That(ExitCodes.For(code), Is.EqualTo(exit));
    }

    [Test]
    public void ExitCodesFor_EveryDefinedErrorCode_IsNotOk()
    {
        foreach (var code in Enum.GetValues<PatchErrorCode>())
            Assert.That(ExitCodes.For(code), Is.InRange(1, 5), code.ToString());
    }

    [Test]
    public void ErrorLine_WithPath_NamesCodeNumberMessageAndPath()
    {
        var line = CommandRunner.ErrorLine(PatchErrorCode.BlobMissing, "blob x is missing", "/p/blobs/x");

        Assert.That(line, Is.EqualTo("patchtool: error BlobMissing (130): blob x is missing (path: /p/blobs/x)"));
    }

    [Test]
    public void ErrorLine_PathAlreadyInMessage_IsNotRepeated()
    {
        var line = CommandRunner.ErrorLine(PatchErrorCode.PatchNotFound, "no manifest.json in '/p'", "/p");

        Assert.That(line, Is.EqualTo("patchtool: error PatchNotFound (100): no manifest.json in '/p'"));
    }

    [Test]
    public void ErrorLine_ControlCharactersInMessage_AreEscapedOnOneLine()
    {
        var line = CommandRunner.ErrorLine(PatchErrorCode.UnsafePath, "bad\n\u001b[31mred", "a\rb");

        Assert.That(line, Is.EqualTo("patchtool: error UnsafePath (120): bad\\u000a\\u001b[31mred (path: a\\u000db)"));
    }

    [Test]
    public void Report_AggregateOfPatcherException_ReportsTheInnerCode()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var ctx = new ToolContext(output, error, isTerminal: false);
        var aggregate = new AggregateException(new PatcherException(PatchErrorCode.BlobHashMismatch, "blob differs"));

        var exit = CommandRunner.Report(ctx, json: false, verbose: false, aggregate);

        Assert.That(exit, Is.EqualTo(3));
        Assert.That(error.ToString(), Does.StartWith("patchtool: error BlobHashMismatch (132): blob differs"));
    }

    [Test]
    public void Report_UnexpectedException_OneLineWithoutStackTraceUnlessVerbose()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var ctx = new ToolContext(output, error, isTerminal: false);

        var exit = CommandRunner.Report(ctx, json: true, verbose: false, new InvalidOperationException("boom"));

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(error.ToString(), Does.StartWith("patchtool: unexpected error (InvalidOperationException): boom"));
        Assert.That(error.ToString(), Does.Not.Contain("   at "));
        Assert.That(new CliResult(exit, output.ToString(), "").Json().GetProperty("ok").GetBoolean(), Is.False);
    }

    [Test]
    public void CreateRoot_StringOptions_TakeTheirTokensAsTyped()
    {
        var root = PatchToolProgram.CreateRoot(new ToolContext(TextWriter.Null, TextWriter.Null, isTerminal: false));
        var apply = Subcommand(root, "apply");

        var parse = root.Parse(["apply", "--patch", "p q", "--target", "/t/x=1:2", "--trust", "a.pub", "--trust", "b.pub"]);

        Assert.That(parse.Errors, Is.Empty);
        Assert.That(parse.GetValue(StringOption(apply, "--patch")), Is.EqualTo("p q"));
        Assert.That(parse.GetValue(StringOption(apply, "--target")), Is.EqualTo("/t/x=1:2"));
        Assert.That(parse.GetValue((Option<string[]>)apply.Options.Single(o => o.Name == "--trust")), Is.EqualTo(new[] { "a.pub", "b.pub" }));
        Assert.That(parse.GetValue(StringOption(apply, "--state-dir")), Is.Null);
        Assert.That(parse.GetValue(StringOption(apply, "--strategy")), Is.EqualTo("auto"), "a default is not parsed");
        foreach (var command in root.Subcommands)
        {
            foreach (var option in command.Options)
            {
                if (option is Option<string> text) Assert.That(text.CustomParser, Is.Not.Null, $"{command.Name} {option.Name}");
                if (option is Option<string[]> texts) Assert.That(texts.CustomParser, Is.Not.Null, $"{command.Name} {option.Name}");
            }
        }
    }

    [TestCase(false, "recover", "--target", "t")]
    [TestCase(true, "recover", "--target", "t", "--json")]
    [TestCase(true, "recover", "--json", "true", "--target", "t")]
    [TestCase(false, "recover", "--json", "false", "--target", "t")]
    public void Flag_JsonOption_IsWhatTheCommandLineSays(bool expected, params string[] args)
    {
        var root = PatchToolProgram.CreateRoot(new ToolContext(TextWriter.Null, TextWriter.Null, isTerminal: false));
        var json = (Option<bool>)Subcommand(root, "recover").Options.Single(o => o.Name == "--json");

        var parse = root.Parse(args);

        Assert.That(parse.Errors, Is.Empty);
        Assert.That(ToolOptions.Flag(parse, json), Is.EqualTo(expected));
    }

    [TestCase("-v", "recover", "--target", "t")]
    [TestCase("recover", "--target", "t", "--verbose")]
    public void Flag_VerboseBeforeOrAfterTheCommand_IsSet(params string[] args)
    {
        var root = PatchToolProgram.CreateRoot(new ToolContext(TextWriter.Null, TextWriter.Null, isTerminal: false));
        var verbose = (Option<bool>)root.Options.Single(o => o.Name == "--verbose");

        Assert.That(ToolOptions.Flag(root.Parse(args), verbose), Is.True);
        Assert.That(ToolOptions.Flag(root.Parse(["recover", "--target", "t"]), verbose), Is.False);
    }

    [Test]
    public void CreateRoot_InstallCommands_OnlyVerifyInstallIsCancellable()
    {
        var root = PatchToolProgram.CreateRoot(new ToolContext(TextWriter.Null, TextWriter.Null, isTerminal: false));

        // A synchronous action gets no SIGINT/SIGTERM handlers: recover runs at every start of an app.
        foreach (var name in new[] { "recover", "status", "rollback" })
            Assert.That(Subcommand(root, name).Action, Is.InstanceOf<SynchronousCommandLineAction>(), name);
        Assert.That(Subcommand(root, "verify-install").Action, Is.InstanceOf<AsynchronousCommandLineAction>());
    }

    private static Command Subcommand(RootCommand root, string name) => root.Subcommands.Single(c => c.Name == name);

    private static Option<string> StringOption(Command command, string name) => (Option<string>)command.Options.Single(o => o.Name == name);
}
