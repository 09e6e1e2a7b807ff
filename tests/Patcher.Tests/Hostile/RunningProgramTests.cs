using System.Diagnostics;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Hostile;

/// <summary>A program with its working directory in the install (a running game) is found, and the option decides.</summary>
[Category("Hostile")]
public sealed class RunningProgramTests
{
    private static Process RunIn(string directory) =>
        Process.Start(new ProcessStartInfo("sleep", ["120"]) { WorkingDirectory = directory, UseShellExecute = false })!;

    [Test]
    public void Apply_ProgramRunningInInstallAndRefuse_RefusedNamingItAndNothingChanged()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("programs are found through /proc (Linux)");
        using var s = new PatchScenario("running-refuse").WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.Root);
        using var game = RunIn(Path.Join(s.InstallDir, "data"));
        try
        {
            var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.Refuse }));

            Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallInUse), ex.Message);
            Assert.That(ex.Message, Does.Contain($"pid {game.Id}").And.Contain("working directory"));
            Assert.That(HashListing.Of(s.Root), Is.EqualTo(before));
        }
        finally
        {
            game.Kill();
        }
    }

    [Test]
    public void Apply_ProgramRunningInInstallAndUseLayered_AppliedInPlaceUnderTheProgram()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("programs are found through /proc (Linux)");
        using var s = new PatchScenario("running-layered").WithSmallGame().Install();
        s.BuildPatch();
        using var game = RunIn(s.InstallDir);
        try
        {
            var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.UseLayered });

            Assert.That(result.Strategy, Is.EqualTo(CommitStrategy.Layered));
            Assert.That(new DirectoryInfo($"/proc/{game.Id}/cwd").LinkTarget, Is.EqualTo(s.InstallDir), "the program is still in the install, not in an old tree");
            Assert.That(PatchScenario.Listing(s.InstallDir, p => p.StartsWith(".patcher", StringComparison.Ordinal)), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        }
        finally
        {
            game.Kill();
        }
    }
}
