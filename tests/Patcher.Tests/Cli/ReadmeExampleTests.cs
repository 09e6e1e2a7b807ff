using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

/// <summary>
/// The launcher example in README.md is this code: it compiles here, runs against the sample game, and a test
/// checks the README quotes it verbatim.
/// </summary>
public sealed class ReadmeExampleTests
{
    private static string Launcher(string installDir, string patchDir)
    {
        // README:begin
        var options = new PatcherOptions { TrustedKeys = [File.ReadAllText("signing.pub")] };
        Patcher.Recover(installDir, options);   // at startup: finish or undo an interrupted update (cheap)
        try
        {
            var result = Patcher.Apply(installDir, patchDir, options);
            if (result.Status == ApplyStatus.Busy) return "another launcher is updating; try later";
            return $"updated {result.FromVersion} -> {result.ToVersion}";
        }
        catch (PatcherException ex)   // old version intact (unless the message says the new one is in place); ex.Code is stable
        {
            return ex.Code switch
            {
                PatchErrorCode.SignatureMissing or PatchErrorCode.SignatureInvalid => "refused: not signed by us",
                PatchErrorCode.BaseMismatch => "install damaged: download the full package",
                PatchErrorCode.InsufficientSpace or PatchErrorCode.DiskFull => "free some disk space",
                PatchErrorCode.FileLocked => $"close the program using {ex.Path}",
                _ => $"update failed: {ex.Code} {ex.Message}",
            };
        }
        // README:end
    }

    [Test]
    public void Readme_LauncherExample_IsQuotedVerbatim()
    {
        var source = File.ReadAllLines(Path.Join(RepoPaths.Root, "tests", "Patcher.Tests", "Cli", "ReadmeExampleTests.cs"));
        var begin = Array.FindIndex(source, l => l.Trim() == "// README:begin");
        var end = Array.FindIndex(source, l => l.Trim() == "// README:end");
        var indent = source[begin].Length - source[begin].TrimStart().Length;
        var snippet = string.Join('\n', source[(begin + 1)..end].Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));

        var readme = File.ReadAllText(Path.Join(RepoPaths.Root, "README.md")).ReplaceLineEndings("\n");

        Assert.That(readme, Does.Contain(snippet), "README.md must quote the launcher example from ReadmeExampleTests.cs");
    }

    [Test]
    public void Readme_LauncherExample_UpdatesTheSampleInstall()
    {
        using var temp = TempDir.ForCurrentTest();
        var patch = SamplePatch.Build(temp);
        var install = SamplePatch.Install(temp);
        var cwd = Environment.CurrentDirectory;
        File.Copy(RepoPaths.TestPub, temp["signing.pub"]);
        try
        {
            Environment.CurrentDirectory = temp.Path;
            Assert.That(Launcher(install, patch), Is.EqualTo("updated 1.0.0 -> 1.1.0"));
            Assert.That(Launcher(install, patch), Does.StartWith("update failed: NotNewer"));
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }
    }

    [Test]
    public void Readme_QuickStart_NamesTheTwoCommands()
    {
        var readme = File.ReadAllText(Path.Join(RepoPaths.Root, "README.md"));

        Assert.That(readme, Does.Contain("dotnet run --project tools/patchtool -- demo"));
        Assert.That(readme, Does.Contain("\ndotnet test\n"));
    }

    [Test]
    public void Readme_ExitCodes_MatchPatchtoolHelp()
    {
        var readme = File.ReadAllText(Path.Join(RepoPaths.Root, "README.md"));

        foreach (var line in PatchTool.Infrastructure.ExitCodes.HelpText.Split('\n').Where(l => l.Length > 2 && char.IsAsciiDigit(l.Trim()[0])))
        {
            var code = line.Trim()[0];
            Assert.That(readme, Does.Contain($"| {code} |"), $"README.md documents exit code {code}");
        }
    }
}
