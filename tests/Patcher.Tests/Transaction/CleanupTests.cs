using Patching.Tests.TestHelpers;

namespace Patching.Tests.Transaction;

/// <summary>
/// Deleting the old tree is off the critical path: Apply returns once the new version, the user's files and the
/// done row are durable; the trash goes on a background task, and whatever is left is removed by the next Apply
/// or Recover.
/// </summary>
public sealed class CleanupTests
{
    private static string Trash(PatchScenario s) => Path.Join(s.ParentDir, ".game.patcher", "trash");

    [Test]
    public void Apply_CleanupInBackground_NewVersionBeforeReturnAndCleanupTaskEmptiesTheTrash()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame(extraFiles: 200).Install();
        s.BuildPatch();
        var newListing = PatchScenario.Listing(s.NewTree);

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { CleanupInBackground = true, Strategy = CommitStrategy.Swap });

        // Whether or not the background deletion has finished, the install is already exactly the new version.
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(newListing));
        Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Null);
        Assert.That(result.Cleanup.Wait(TimeSpan.FromSeconds(60)), Is.True, "cleanup finished");
        Assert.That(result.Cleanup.IsCompletedSuccessfully, Is.True);
        Assert.That(Directory.Exists(Trash(s)), Is.False, "the old tree was deleted");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(newListing));
    }

    [Test]
    public void Apply_CleanupInline_TrashGoneWhenApplyReturns()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { CleanupInBackground = false, Strategy = CommitStrategy.Swap });

        Assert.That(result.Cleanup.IsCompleted, Is.True);
        Assert.That(Directory.Exists(Trash(s)), Is.False);
    }

    [Test]
    public void Recover_TrashLeftByALauncherThatExited_RemovedAndNothingPending()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        var listing = PatchScenario.Listing(s.InstallDir);
        // What a launcher leaves when it exits while the background deletion is half-way.
        PatchScenario.Write(Path.Join(Trash(s), "20261121000000-deadbeef", "data"), "level1.pak", "old bytes");

        var outcome = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That(outcome.Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(Directory.Exists(Trash(s)), Is.False);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(listing), "the install is not touched");
    }

    [Test]
    public void Recover_TrashLeftBehindWithBackgroundCleanup_ReturnsAtOnceAndItsCleanupEmptiesTheTrash()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        for (var i = 0; i < 200; i++)
            PatchScenario.Write(Path.Join(Trash(s), "20261121000000-deadbeef", "assets"), $"a{i:D3}.bin", "old bytes");

        var outcome = Patcher.Recover(s.InstallDir, s.Options with { CleanupInBackground = true });

        Assert.That(outcome.Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(outcome.Cleanup.Wait(TimeSpan.FromSeconds(60)), Is.True);
        Assert.That(outcome.Cleanup.IsCompletedSuccessfully, Is.True);
        Assert.That(Directory.Exists(Trash(s)), Is.False);
    }

    [Test]
    public void Recover_NothingLeftBehind_CleanupAlreadyComplete()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);

        var outcome = Patcher.Recover(s.InstallDir, s.Options with { CleanupInBackground = true });

        Assert.That(outcome.Cleanup.IsCompleted, Is.True);
    }

    [Test]
    public void Apply_TrashLeftByAnEarlierApply_RemovedByTheNextApply()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        PatchScenario.Write(Path.Join(Trash(s), "20261121000000-deadbeef"), "old.bin", "old bytes");

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

        Assert.That(Directory.Exists(Trash(s)), Is.False);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }
}
