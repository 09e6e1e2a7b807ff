using Patching.Manifests;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>The smaller holes: names too long in bytes, a state directory inside the install, a changed kept version.</summary>
[Category("Hostile")]
public sealed class SmallItemsTests
{
    [Test]
    public void Check_SegmentOver255BytesInUtf8_Refused()
    {
        Assert.That(PathRules.Check(new string('é', 200)), Does.Contain("255 bytes in UTF-8"), "200 characters, 400 bytes");
        Assert.That(PathRules.Check(new string('é', 127)), Is.Null, "254 bytes");
        Assert.That(PathRules.Check("data/" + new string('中', 86)), Does.Contain("bytes in UTF-8"), "258 bytes");
    }

    [TestCase("saves/state")]
    [TestCase("")]
    public void Apply_StateDirectoryInsideInstall_RefusedBeforeAnythingChanges(string inside)
    {
        using var s = new PatchScenario("state-inside").WithSmallGame().Install();
        PatchScenario.Write(s.InstallDir, "saves/slot1.sav", "save");
        s.BuildPatch();
        var before = HashListing.Of(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { StateDirectory = Path.Join(s.InstallDir, inside) }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.StateDirectoryInsideInstall), ex.Message);
        Assert.That(HashListing.Of(s.Root), Is.EqualTo(before), "no folder left among the player's files");
    }

    [Test]
    public void Rollback_KeptPreviousVersionChanged_RefusedAndNothingChanged()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the kept previous version needs the swap strategy (Linux)");
        using var s = new PatchScenario("rollback-verify").WithSmallGame().InstallThroughPatcher();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { KeepPreviousVersion = true });
        var kept = Path.Join(new StateLayout(s.InstallDir, null).PreviousDir, "game.exe");
        var bytes = File.ReadAllBytes(kept);
        bytes[0] ^= 1;
        File.WriteAllBytes(kept, bytes);
        var before = HashListing.Of(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Rollback(s.InstallDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.VerifyFailed), ex.Message);
        Assert.That(ex.Message, Does.Contain("game.exe"));
        Assert.That(HashListing.Of(s.ParentDir), Is.EqualTo(before));
        Assert.That(Patcher.Status(s.InstallDir).InstalledVersion, Is.EqualTo("2.0.0"));
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Apply_AsRootOnInstallOfAnotherUser_EveryEntryKeepsThePlayersOwner(CommitStrategy strategy)
    {
        if (!PlantedState.IsRoot) Assert.Ignore("an install of another user needs root on Linux");
        using var s = new PatchScenario("root-owner").WithSmallGame().Install();
        s.BuildPatch();
        PlantedState.Run("chown", "-R", "4243:4243", s.InstallDir);

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });

        var rootOwned = Directory.EnumerateFileSystemEntries(s.InstallDir, "*", SearchOption.AllDirectories).Prepend(s.InstallDir)
            .Where(p => !p.Contains(".patcher", StringComparison.Ordinal) && Owner(p) != "4243").ToList();
        Assert.That(rootOwned, Is.Empty, "entries the update made belong to the player");
    }

    private static string Owner(string path)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return text;
    }
}
