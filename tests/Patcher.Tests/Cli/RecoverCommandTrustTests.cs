using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

/// <summary>
/// <c>patchtool recover --trust</c>: an update interrupted after its exchange is completed only when its stored manifest
/// verifies against the keys given; without them it is undone.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RecoverCommandTrustTests
{
    [Test]
    public void Recover_InterruptedAfterExchangeWithItsKey_Completes()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("recover-trust").WithSmallGame().Install();
        PlantedState.Plant(s, afterExchange: true);

        var result = CliRunner.Expect(0, "recover", "--target", s.InstallDir, "--trust", Path.Join(s.Root, "evil.pub"));

        Assert.That(result.Out, Does.Contain("completed"));
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "game.exe")), Is.EqualTo(PlantedState.Program));
    }

    [Test]
    public void Recover_InterruptedAfterExchangeWithoutTrust_Undone()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("recover-notrust").WithSmallGame().Install();
        var before = PatchScenario.Listing(s.InstallDir);
        PlantedState.Plant(s, afterExchange: true);

        var result = CliRunner.Expect(0, "recover", "--target", s.InstallDir);

        Assert.That(result.Out, Does.Contain("undone"));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }
}
