using Patching.Tests.TestHelpers;

namespace Patching.Tests.Hostile;

/// <summary>
/// A state directory prepared by someone else must not install their files: it is refused when another user owns it,
/// and a pending transaction whose manifest the pinned keys do not verify is rolled back, never forward.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PlantedStateTests
{
    [TestCase(false)]
    [TestCase(true)]
    public void Recover_PlantedTransactionSignedByAnotherKey_RolledBackNotForward(bool afterExchange)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("planted-sig").WithSmallGame().Install();
        var before = PatchScenario.Listing(s.InstallDir);
        PlantedState.Plant(s, afterExchange);

        var recovered = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledBack));
        Assert.That(recovered.InstalledVersion, Is.Not.EqualTo(PlantedState.Version));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before), "the player's version is back exactly");
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "game.exe")), Is.EqualTo("engine v1"));
        // The planted version blocks nothing: the player's real update applies.
        s.BuildPatch();
        Assert.That(Patcher.Apply(s.InstallDir, s.PatchDir, s.Options).ToVersion, Is.EqualTo("2.0.0"));
    }

    [Test]
    public void Recover_PlantedTransactionWithoutTrustedKeys_RolledBack()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario("planted-nokeys").WithSmallGame().Install();
        var before = PatchScenario.Listing(s.InstallDir);
        PlantedState.Plant(s, afterExchange: true);

        Assert.That(Patcher.Recover(s.InstallDir).Outcome, Is.EqualTo(RecoveryOutcome.RolledBack));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }

    [Test]
    public void Recover_StateDirectoryOwnedByAnotherUser_RefusedAndNothingChanged()
    {
        if (!PlantedState.IsRoot) Assert.Ignore("giving the state directory another owner needs root on Linux");
        using var s = new PatchScenario("planted-owner").WithSmallGame().Install();
        PlantedState.Plant(s, afterExchange: false);
        PlantedState.Run("chown", "-R", "4242:4242", PlantedState.StateDir(s));
        var before = HashListing.Of(s.ParentDir);

        var recover = Assert.Throws<PatcherException>(() => Patcher.Recover(s.InstallDir, s.Options));
        s.BuildPatch();
        var apply = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(recover!.Code, Is.EqualTo(PatchErrorCode.StateDirectoryUntrusted), recover.Message);
        Assert.That(recover.Message, Does.Contain("owned by user 4242"));
        Assert.That(apply!.Code, Is.EqualTo(PatchErrorCode.StateDirectoryUntrusted), apply.Message);
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before), "install and planted state byte-identical");
    }

    [TestCase("journal.db")]
    [TestCase("")]
    public void Recover_StateWritableByOthers_Refused(string entry)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("owners and modes are checked on Linux");
        using var s = new PatchScenario("planted-mode").WithSmallGame().Install();
        PlantedState.Plant(s, afterExchange: false);
        var path = Path.Join(PlantedState.StateDir(s), entry);
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.OtherWrite);
        var before = HashListing.Of(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Recover(s.InstallDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.StateDirectoryUntrusted), ex.Message);
        Assert.That(ex.Message, Does.Contain("writable by group or others"));
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before));
    }

    [Test]
    public void Apply_UmaskLetsGroupWrite_StateDirectoryMadeTrustedAndNextRunAccepted()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("owners and modes are checked on Linux");
        using var s = new PatchScenario("umask").WithSmallGame().Install();
        s.BuildPatch();
        var old = Patching.Tests.TestHelpers.Umask.Set(0x2); // 002, as Debian gives users with a private group
        try
        {
            Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        }
        finally
        {
            Patching.Tests.TestHelpers.Umask.Set(old);
        }

        var state = PlantedState.StateDir(s);
        Assert.That(File.GetUnixFileMode(state) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite), Is.EqualTo((UnixFileMode)0));
        Assert.That(File.GetUnixFileMode(Path.Join(state, "lock")) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite), Is.EqualTo((UnixFileMode)0));
        Assert.That(Patcher.Recover(s.InstallDir, s.Options).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
    }

    [Test]
    public void PatchtoolRecover_AsPlayerWithStateOfAnotherUser_RefusedWithCode220()
    {
        if (!PlantedState.IsRoot) Assert.Ignore("running as two users needs root (setpriv) on Linux");
        if (!File.Exists("/usr/bin/setpriv") && !File.Exists("/bin/setpriv")) Assert.Ignore("setpriv (util-linux) is not installed");
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if ((d.UnixFileMode & UnixFileMode.OtherExecute) == 0) Assert.Ignore($"another user cannot reach the test binaries ('{d.FullName}' is closed to others)");
        }

        using var s = new PatchScenario("two-users").WithSmallGame().Install();
        PlantedState.Plant(s, afterExchange: false);
        // The game lives in a shared sticky folder; the player (4243) owns it, the attacker (4242) the state beside it,
        // opened up so that the player could use it.
        PlantedState.Run("chmod", "1777", s.ParentDir);
        PlantedState.Run("chown", "-R", "4243:4243", s.InstallDir);
        PlantedState.Run("chown", "-R", "4242:4242", PlantedState.StateDir(s));
        PlantedState.Run("chmod", "-R", "a+rwX", PlantedState.StateDir(s));
        var before = HashListing.Of(s.ParentDir);

        var psi = new System.Diagnostics.ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--reuid=4243", "--regid=4243", "--clear-groups", "dotnet", Path.Join(AppContext.BaseDirectory, "patchtool.dll"), "recover", "--target", s.InstallDir })
            psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = s.Root;
        psi.Environment["DOTNET_CLI_HOME"] = s.Root;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();

        Assert.That(stderr, Does.Contain("StateDirectoryUntrusted (220)"), $"exit {p.ExitCode}: {stderr}");
        Assert.That(p.ExitCode, Is.Not.EqualTo(0));
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "game.exe")), Is.EqualTo("engine v1"));
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before));
    }
}
