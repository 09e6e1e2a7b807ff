using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

/// <summary>
/// The launcher example in README.md is the update steps of samples/Launcher: a test checks the README quotes them
/// verbatim, and others run them against the sample game.
/// </summary>
public sealed class ReadmeExampleTests
{
    private static readonly string SampleSource = Path.Join(RepoPaths.Root, "samples", "Launcher", "Program.cs");

    [Test]
    public void Readme_LauncherExample_IsQuotedVerbatimFromTheSample()
    {
        var source = File.ReadAllLines(SampleSource);
        var begin = Array.FindIndex(source, l => l.Trim() == "// README:begin");
        var end = Array.FindIndex(source, l => l.Trim() == "// README:end");
        Assert.That((begin, end), Is.Not.EqualTo((-1, -1)), "the sample marks the quoted part");
        var indent = source[begin].Length - source[begin].TrimStart().Length;
        var snippet = string.Join('\n', source[(begin + 1)..end].Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));

        var readme = File.ReadAllText(Path.Join(RepoPaths.Root, "README.md")).ReplaceLineEndings("\n");

        Assert.That(readme, Does.Contain(snippet), "README.md must quote the update steps of samples/Launcher/Program.cs");
    }

    [Test]
    public async Task SampleLauncher_SampleInstall_UpdatesThenSaysUpToDate()
    {
        using var temp = TempDir.ForCurrentTest();
        var patch = SamplePatch.Build(temp);
        var install = SamplePatch.Install(temp);
        var pem = await File.ReadAllTextAsync(RepoPaths.TestPub);
        var progress = new ProgressRecorder();

        var first = await PatcherSample.Program.UpdateAsync(install, patch, pem, progress, TextWriter.Null, CancellationToken.None);
        var second = await PatcherSample.Program.UpdateAsync(install, patch, pem, progress, TextWriter.Null, CancellationToken.None);

        Assert.That(first, Is.EqualTo(("updated 1.0.0 -> 1.1.0", 0)));
        Assert.That(second, Is.EqualTo(("sample-game 1.1.0 is up to date", 0)));
        Assert.That(progress.Reports[^1].Phase, Is.EqualTo(PatchPhase.Done));
    }

    [Test]
    public async Task SampleLauncher_Cancelled_Exit130AndOldVersionIntact()
    {
        using var temp = TempDir.ForCurrentTest();
        var patch = SamplePatch.Build(temp);
        var install = SamplePatch.Install(temp);
        var before = HashListing.Of(install);
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Staging) cancel.Cancel();
        });

        var result = await PatcherSample.Program.UpdateAsync(install, patch, await File.ReadAllTextAsync(RepoPaths.TestPub), progress, TextWriter.Null, cancel.Token);

        Assert.That(result, Is.EqualTo(("update cancelled; the old version is intact", 130)));
        Assert.That(HashListing.Of(install), Is.EqualTo(before));
    }

    [Test]
    public async Task SampleLauncher_UntrustedKey_RefusedWithAPlayerMessage()
    {
        using var temp = TempDir.ForCurrentTest();
        var patch = SamplePatch.Build(temp);
        var install = SamplePatch.Install(temp);

        var result = await PatcherSample.Program.UpdateAsync(install, patch, await File.ReadAllTextAsync(RepoPaths.TestPub2), new ProgressRecorder(), TextWriter.Null, CancellationToken.None);

        Assert.That(result, Is.EqualTo(("the update is not signed by the publisher and was refused", 3)));
    }

    [Test]
    public void SampleLauncher_EveryErrorCode_HasItsOwnMessage()
    {
        foreach (var code in Enum.GetValues<PatchErrorCode>())
        {
            var message = PatcherSample.ErrorMessages.For(new PatcherException(code, "detail", "some/file"));
            Assert.That(message, Is.Not.Empty.And.Not.Contain(code.ToString()), code.ToString());
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
