using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

public sealed class DemoCommandTests
{
    [Test]
    public void Demo_WithWorkDir_CompletesEveryStepAndKeepsTheDir()
    {
        using var temp = TempDir.ForCurrentTest();
        var work = temp["work"];

        var result = CliRunner.Expect(0, "demo", "--work", work);

        Assert.That(result.Out, Does.Contain("$ patchtool keygen"));
        Assert.That(result.Out, Does.Contain("$ patchtool build"));
        Assert.That(result.Out, Does.Contain("$ patchtool verify"));
        Assert.That(result.Out, Does.Contain("$ patchtool inspect"));
        Assert.That(result.Out, Does.Contain("patchtool: error SignatureInvalid (111)"), "the tampered copy is refused");
        Assert.That(result.Out, Does.Contain("check: the install is exactly 1.1.0 plus the player's saves/slot1.sav: OK"));
        Assert.That(result.Out, Does.Contain("demo complete"));
        Assert.That(File.ReadAllText(Path.Join(work, "install", "saves", "slot1.sav")), Is.EqualTo(PatchTool.Commands.DemoCommand.UserFileContent));
        Assert.That(Directory.Exists(Path.Join(work, "install", "mods")), Is.True, "the empty directory of v2 is installed");
    }

    [Test]
    public void Demo_WithoutWorkDir_RemovesItsTemporaryDirectory()
    {
        var result = CliRunner.Expect(0, "demo");

        var line = result.Out.Split('\n').First(l => l.TrimStart().StartsWith("work directory", StringComparison.Ordinal));
        var work = line.Trim()["work directory".Length..].Trim();
        Assert.That(Directory.Exists(work), Is.False, work);
    }

    [Test]
    public void Demo_NonEmptyWorkDir_IsUsageErrorAndTouchesNothing()
    {
        using var temp = TempDir.ForCurrentTest();
        File.WriteAllText(temp["keep.txt"], "mine");

        CliRunner.Expect(2, "demo", "--work", temp.Path);

        Assert.That(Directory.GetFileSystemEntries(temp.Path), Has.Length.EqualTo(1));
    }
}
