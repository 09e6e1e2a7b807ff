using Patching.Tests.Commit;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Transaction;

/// <summary>
/// The failures a launcher meets that used to carry a misleading code or message: each gets the code and words a
/// user needs, and changes nothing on disk.
/// </summary>
public sealed class LauncherErrorTests
{
    [Test]
    public void Apply_TargetIsAFile_InstallNotADirectoryAndNothingChanged()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        Directory.CreateDirectory(s.ParentDir);
        File.WriteAllText(s.InstallDir, "not a folder");
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallNotADirectory));
        Assert.That(ex.Message, Does.Contain("is a file"));
        Assert.That(ex.Path, Is.EqualTo(s.InstallDir));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_PatchDirectoryMissing_PatchNotFoundSaysTheDirectoryIsMissing()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        var missing = Path.Join(s.Root, "no-such-patch");
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, missing, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.PatchNotFound));
        Assert.That(ex.Message, Does.Contain($"patch directory '{missing}' does not exist"));
        Assert.That(ex.Message, Does.Not.Contain("manifest.json"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_GarbageTrustedKey_KeyInvalidWithoutDotNetParameterText()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { TrustedKeys = ["this is not a key"] }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.KeyInvalid));
        Assert.That(ex.Message, Does.Not.Contain("(Parameter"));
        Assert.That(ex.Message, Does.Contain("BEGIN PUBLIC KEY"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Verify_InstallPatcherNeverManaged_NotManagedByPatcher()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Verify(s.InstallDir));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.NotManagedByPatcher));
        Assert.That(ex.Message, Does.Contain("Patcher has not installed a version"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Status_WhileAnApplyIsStaging_SaysAnUpdateIsInProgress()
    {
        using var s = new PatchScenario().WithSmallGame(extraFiles: 50).Install();
        s.BuildPatch();
        using var staging = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != PatchPhase.Staging || staging.IsSet) return;
            staging.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        });

        var apply = Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options, progress);
        Assert.That(staging.Wait(TimeSpan.FromSeconds(30)), Is.True, "the apply reached staging");
        InstallStatus during;
        try
        {
            during = Patcher.Status(s.InstallDir);
        }
        finally
        {
            release.Set();
        }

        apply.GetAwaiter().GetResult();
        Assert.That(during.UpdateInProgress, Is.True);
        Assert.That(Patcher.Status(s.InstallDir).UpdateInProgress, Is.False, "finished");
    }

    [Test]
    public void Status_InterruptedTransactionNobodyIsRunning_NotInProgress()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        // A marker without a running applier: what a crash leaves (the lock went with the process).
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        File.WriteAllText(Path.Join(s.ParentDir, ".game.patcher", "pending"), "x");

        Assert.That(Patcher.Status(s.InstallDir).UpdateInProgress, Is.False);
    }

    [Test]
    public void Apply_Logs_NamedEventsForVerifiedInstalledAndRecoveryOutcome()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var log = new ListLogger();

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Logger = log });
        File.WriteAllText(Path.Join(s.ParentDir, ".game.patcher", "pending"), "x");
        Patcher.Recover(s.InstallDir, s.Options with { Logger = log });

        Assert.That(log.Ids, Does.Contain(PatcherLogEvents.PatchVerified.Id));
        Assert.That(log.Ids, Does.Contain(PatcherLogEvents.Installed.Id));
        Assert.That(log.Ids, Does.Contain(PatcherLogEvents.RecoveryOutcome.Id));
    }
}
