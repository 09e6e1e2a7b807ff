using Patching.Tests.TestHelpers;
using PatchTool;

namespace Patching.Tests.Cli;

/// <summary>
/// patchtool as a launcher's script sees it: an interrupt has its own exit code, every failure prints the one JSON
/// shape, and the messages say what is wrong.
/// </summary>
public sealed class LauncherCliTests
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

    [Test]
    public void VerifyInstall_InstallNeverManaged_ExitsInstallProblemNotManagedByPatcher()
    {
        var result = CliRunner.Run("verify-install", "--target", _install, "--json");

        Assert.That(result.ExitCode, Is.EqualTo(4), result.ToString);
        Assert.That(result.Err, Does.StartWith("patchtool: error NotManagedByPatcher (251)"));
        var error = result.Json().GetProperty("error");
        Assert.That(error.GetProperty("name").GetString(), Is.EqualTo("NotManagedByPatcher"));
        Assert.That(result.Json().GetProperty("ok").GetBoolean(), Is.False);
    }

    [Test]
    public void VerifyInstall_FileModified_JsonCarriesTheErrorObject()
    {
        CliRunner.Expect(0, "apply", "--patch", _patch, "--target", _install, "--trust", RepoPaths.TestPub);
        var file = Directory.EnumerateFiles(_install, "*", SearchOption.AllDirectories).First(f => !f.Contains("saves", StringComparison.Ordinal));
        File.AppendAllText(file, "tampered");

        var result = CliRunner.Expect(4, "verify-install", "--target", _install, "--json");

        Assert.That(result.Json().GetProperty("error").GetProperty("name").GetString(), Is.EqualTo("VerifyFailed"));
    }

    [Test]
    public void Apply_GarbageTrustFile_KeyInvalidWithoutDotNetParameterText()
    {
        var garbage = _temp["garbage.pub"];
        File.WriteAllText(garbage, "not a key at all\n");

        var result = CliRunner.Expect(3, "apply", "--patch", _patch, "--target", _install, "--trust", garbage, "--json");

        Assert.That(result.Err, Does.StartWith("patchtool: error KeyInvalid (113)"));
        Assert.That(result.Err + result.Out, Does.Not.Contain("(Parameter"));
    }

    [Test]
    public void Apply_FlagsNamedAsTheOptions_AcceptedBesideTheOldNames()
    {
        var result = CliRunner.Expect(0, "apply", "--patch", _patch, "--install-dir", _install, "--trust", RepoPaths.TestPub,
            "--verify-base-hashes", "--keep-previous-version", "--state-directory", _temp["state"], "--json");

        Assert.That(result.Json().GetProperty("ok").GetBoolean(), Is.True);
        Assert.That(CliRunner.Expect(0, "status", "--target", _install, "--state-dir", _temp["state"], "--json").Json()
            .GetProperty("installedVersion").GetString(), Is.EqualTo("1.1.0"));
    }

    [Test]
    public void ProgressDetail_RateAndRemainingKnown_ShowsMegabytesPerSecondAndEta()
    {
        var p = new PatchProgress(PatchPhase.Staging, 3, 10, 30_000_000, 100_000_000) { BytesPerSecond = 15e6, Remaining = TimeSpan.FromSeconds(65) };

        var detail = PatchTool.Infrastructure.PlainProgress.Detail(p);

        Assert.That(detail, Does.StartWith("3/10 items, "));
        Assert.That(detail, Does.EndWith(", 15.0 MB/s, ETA 1:05"));
    }

    [Test]
    public void Apply_NotATerminal_FirstLineSaysWhatRunsBeforeAnyPhase()
    {
        var result = CliRunner.Expect(0, "apply", "--patch", _patch, "--target", _install, "--trust", RepoPaths.TestPub);

        var lines = result.Out.Split('\n');
        Assert.That(lines[0], Does.StartWith("applying "));
        Assert.That(lines[1], Does.StartWith("  [verifying]"));
    }
}
