using Patching.Tests.TestHelpers;

namespace Patching.Tests.Transaction;

/// <summary>What a launcher asks before and around an apply: the patch's summary, and the async operations.</summary>
public sealed class LauncherApiTests
{
    [Test]
    public void ReadPatchInfo_SignedPatch_SummaryMatchesTheTreesAndNothingChanges()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var before = PatchScenario.Listing(s.Root);

        var info = Patcher.ReadPatchInfo(s.PatchDir, s.Options);

        Assert.That((info.Product, info.Version, info.FromVersion, info.IsFullPackage), Is.EqualTo(("demo-game", "2.0.0", (string?)"1.0.0", false)));
        Assert.That(info.FilesAdded, Is.EqualTo(new[] { "data/level3.pak", "docs/guide.txt" }));
        Assert.That(info.FilesChanged, Is.EqualTo(new[] { "data/level2.pak", "game.exe" }));
        Assert.That(info.FilesRemoved, Is.EqualTo(new[] { "data/old-only.txt", "docs/manual.txt", "legacy/readme.txt" }));
        var blobs = Directory.EnumerateFiles(Path.Join(s.PatchDir, "blobs"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.That(info.DownloadBytes, Is.EqualTo(blobs));
        Assert.That(info.InstalledBytes, Is.EqualTo(Directory.EnumerateFiles(s.NewTree, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)));
        Assert.That(info.SignatureVerified, Is.True);
        Assert.That(info.SigningKeyIds, Has.Count.EqualTo(1));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void ReadPatchInfo_NoTrustedKeys_ClaimedKeyIdsUnverified()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();

        var info = Patcher.ReadPatchInfo(s.PatchDir);

        Assert.That(info.SignatureVerified, Is.False);
        Assert.That(info.SigningKeyIds, Is.EqualTo(Patcher.ReadPatchInfo(s.PatchDir, s.Options).SigningKeyIds));
    }

    [Test]
    public void ReadPatchInfo_UntrustedSigner_RefusedAsApplyWould()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        using var stranger = new PatchScenario();
        var other = stranger.PublicKey;

        var ex = Assert.Throws<PatcherException>(() => Patcher.ReadPatchInfo(s.PatchDir, s.Options with { TrustedKeys = [other] }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void ReadPatchInfo_MissingDirectory_PatchNotFound()
    {
        using var s = new PatchScenario();

        var ex = Assert.Throws<PatcherException>(() => Patcher.ReadPatchInfo(Path.Join(s.Root, "none")));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.PatchNotFound));
    }

    [Test]
    public async Task RecoverAsync_InterruptedTransaction_ReportsStartAndDone()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        var recorder = new ProgressRecorder();

        var result = await Patcher.RecoverAsync(s.InstallDir, s.Options, recorder);

        Assert.That(result.Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(recorder.Reports.Select(r => r.Phase), Is.EqualTo(new[] { PatchPhase.Committing, PatchPhase.Done }));
        Assert.That(recorder.Reports[^1].Fraction, Is.EqualTo(1.0));
    }

    [Test]
    public void RecoverAsync_CancelledBeforeItStarts_OperationCanceledAndNothingChanged()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);
        var marker = Path.Join(s.ParentDir, ".game.patcher", "pending");
        File.WriteAllText(marker, "x");
        var before = PatchScenario.Listing(s.Root);

        Assert.CatchAsync<OperationCanceledException>(() => Patcher.RecoverAsync(s.InstallDir, s.Options, null, new CancellationToken(canceled: true)));

        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public async Task RollbackAsync_KeptPreviousVersion_RestoresItWithProgress()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("keeping the previous version needs the swap strategy (Linux)");
        using var s = new PatchScenario().WithSmallGame().InstallThroughPatcher();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { KeepPreviousVersion = true, Strategy = CommitStrategy.Swap });
        var recorder = new ProgressRecorder();

        var result = await Patcher.RollbackAsync(s.InstallDir, s.Options, recorder);

        Assert.That(result.ToVersion, Is.EqualTo("1.0.0"));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.OldTree)));
        Assert.That(recorder.Reports[^1].Phase, Is.EqualTo(PatchPhase.Done));
    }

    [Test]
    public void VerifyAsync_Cancelled_OperationCanceled()
    {
        using var s = new PatchScenario().WithSmallGame().InstallThroughPatcher();

        Assert.CatchAsync<OperationCanceledException>(() => Patcher.VerifyAsync(s.InstallDir, s.Options, null, new CancellationToken(canceled: true)));
    }
}
