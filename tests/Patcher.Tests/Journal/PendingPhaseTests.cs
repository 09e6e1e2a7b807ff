using Patching.Tests.TestHelpers;

namespace Patching.Tests.Journal;

/// <summary>
/// <see cref="InstallStatus.PendingState"/> is a public enum, read from the journal's stored text; patchtool prints
/// it as that same text.
/// </summary>
public sealed class PendingPhaseTests
{
    /// <summary>An installed game with a transaction left pending in <paramref name="state"/>, as an interrupted apply leaves it.</summary>
    private static PatchScenario Interrupted(string state)
    {
        var s = new PatchScenario().WithSmallGame().Install();
        var stateDir = Directory.CreateDirectory(Path.Join(s.ParentDir, ".game.patcher")).FullName;
        RawJournal.WriteTx(Path.Join(stateDir, "journal.db"), s.InstallDir, "tx-9", "apply", state);
        File.WriteAllText(Path.Join(stateDir, "pending"), "tx-9");
        return s;
    }

    [TestCase("started", PendingPhase.Started)]
    [TestCase("backup-complete", PendingPhase.BackupComplete)]
    [TestCase("patched", PendingPhase.Patched)]
    [TestCase("rolling-back", PendingPhase.RollingBack)]
    public void Status_TransactionPending_ReportsItsPhase(string stored, PendingPhase expected)
    {
        using var s = Interrupted(stored);

        var status = Patcher.Status(s.InstallDir);

        Assert.That((status.PendingTransactionId, status.PendingState), Is.EqualTo(("tx-9", (PendingPhase?)expected)));
    }

    [Test]
    public void Status_NothingPending_NoPhase()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);

        Assert.That(Patcher.Status(s.InstallDir).PendingState, Is.Null);
    }

    [Test]
    public void Cli_StatusWithTransactionPending_PrintsTheStoredText()
    {
        using var s = Interrupted("backup-complete");

        var text = CliRunner.Expect(0, "status", "--target", s.InstallDir);
        var json = CliRunner.Expect(0, "status", "--target", s.InstallDir, "--json").Json();

        Assert.That(text.Out, Does.Contain("pending      transaction tx-9 in state backup-complete was interrupted"));
        Assert.That(json.GetProperty("pendingState").GetString(), Is.EqualTo("backup-complete"));
    }

    [Test]
    public void PendingPhase_EveryValue_HasTheTextOfItsJournalState()
    {
        Assert.That(Enum.GetValues<PendingPhase>().Select(p => PatchTool.Commands.StatusCommand.PhaseText(p)),
            Is.EqualTo(new[] { "started", "backup-complete", "patched", "rolling-back" }));
    }
}
