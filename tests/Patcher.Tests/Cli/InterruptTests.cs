using Patching.Tests.TestHelpers;
using PatchTool;

namespace Patching.Tests.Cli;

/// <summary>An interrupted patchtool command: its own exit code, the one JSON failure shape, the install untouched.</summary>
public sealed class InterruptTests
{
    private TempDir _temp = null!;
    private string _patch = null!;
    private string _install = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        _patch = SamplePatch.Build(_temp);
        _install = SamplePatch.Install(_temp);
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task Apply_Interrupted_Exits130WithInterruptedErrorAndInstallUnchanged()
    {
        var before = HashListing.Of(Path.GetDirectoryName(_install)!);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        using var output = new StringWriter();
        using var error = new StringWriter();

        var exit = await PatchToolProgram.RunAsync(["apply", "--patch", _patch, "--target", _install, "--trust", RepoPaths.TestPub, "--json"], output, error, cts.Token);

        Assert.That(exit, Is.EqualTo(130), () => $"{output}\n{error}");
        var json = new CliResult(exit, output.ToString(), error.ToString()).Json();
        Assert.That(json.GetProperty("ok").GetBoolean(), Is.False);
        Assert.That(json.GetProperty("error").GetProperty("name").GetString(), Is.EqualTo("Interrupted"));
        Assert.That(error.ToString(), Does.StartWith("patchtool: interrupted"));
        Assert.That(HashListing.Of(Path.GetDirectoryName(_install)!), Is.EqualTo(before), "nothing beside or inside the install changed");
    }
}
