using System.Text.Json;
using PatchTool;

namespace Patching.Tests.TestHelpers;

/// <summary>What one in-process patchtool run did.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Err)
{
    /// <summary>stdout parsed as JSON (fails the test if it is not).</summary>
    public JsonElement Json()
    {
        try
        {
            using var doc = JsonDocument.Parse(Out);
            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            Assert.Fail($"stdout is not JSON ({ex.Message}):\n{Out}\nstderr:\n{Err}");
            throw;
        }
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Err}";
}

/// <summary>Runs patchtool's entry point in-process with captured stdout and stderr.</summary>
internal static class CliRunner
{
    public static CliResult Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = PatchToolProgram.Run(args, output, error);
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    /// <summary>Runs and asserts the exit code, showing both streams when it differs.</summary>
    public static CliResult Expect(int exitCode, params string[] args)
    {
        var result = Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(exitCode), () => $"patchtool {string.Join(' ', args)}\n{result}");
        return result;
    }
}
