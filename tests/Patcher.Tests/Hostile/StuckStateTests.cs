using Patching.IO;
using System.Diagnostics;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Hostile;

/// <summary>
/// An entry Patcher cannot move or delete (immutable, the one permission root cannot ignore) never leaves a
/// transaction pending and never keeps the rest of an old version on disk: it is left, kept and reported.
/// </summary>
[Category("Hostile")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class StuckStateTests
{
    private static bool Chattr(string flag, string path)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true })!;
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no chattr here
        }
    }

    private static void RequireImmutable(string probe)
    {
        if (!PlantedState.IsRoot) Assert.Ignore("chattr +i needs root on Linux");
        File.WriteAllText(probe, "probe");
        if (!Chattr("+i", probe)) Assert.Ignore("the immutable attribute cannot be set here (file system, or no CAP_LINUX_IMMUTABLE)");
        Chattr("-i", probe);
        File.Delete(probe);
    }

    [Test]
    public void Apply_ImmutablePlayerFile_TransactionDoneAndFileKeptAndReported()
    {
        using var s = new PatchScenario("immutable-save").WithSmallGame().Install();
        RequireImmutable(Path.Join(s.Root, "probe"));
        s.BuildPatch();
        var save = Path.Join(s.InstallDir, "saves", "slot1.sav");
        PatchScenario.Write(s.InstallDir, "saves/slot1.sav", "player's save");
        PatchScenario.Write(s.InstallDir, "saves/slot2.sav", "another save");
        Chattr("+i", save);
        try
        {
            var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

            Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
            Assert.That(result.EntriesLeftBehind, Is.EqualTo(new[] { "saves/slot1.sav" }));
            Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Null, "the transaction reached done");
            Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "saves", "slot2.sav")), Is.EqualTo("another save"));
            var kept = Path.Join(new StateLayout(s.InstallDir, null).UnsweptDir(result.TransactionId!), "saves", "slot1.sav");
            Assert.That(File.ReadAllText(kept), Is.EqualTo("player's save"), "kept, never deleted");
            Assert.That(Patcher.Recover(s.InstallDir, s.Options).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        }
        finally
        {
            foreach (var f in Directory.EnumerateFiles(s.Root, "slot1.sav", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
                Chattr("-i", f);
        }
    }

    [Test]
    public void Apply_ImmutableFileInOldVersion_TrashDeletesEverythingElse()
    {
        using var s = new PatchScenario("immutable-trash").WithSmallGame(extraFiles: 20).Install();
        RequireImmutable(Path.Join(s.Root, "probe"));
        s.BuildPatch();
        var stuck = Path.Join(s.InstallDir, "data", "old-only.txt");
        Chattr("+i", stuck);
        try
        {
            Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

            var trash = new StateLayout(s.InstallDir, null).TrashDir;
            var left = Directory.EnumerateFileSystemEntries(trash, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
                .Where(p => !Directory.Exists(p)).Select(Path.GetFileName).ToList();
            Assert.That(left, Is.EqualTo(new[] { "old-only.txt" }), "only the file that cannot go is left");
        }
        finally
        {
            foreach (var f in Directory.EnumerateFiles(s.Root, "old-only.txt", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
                Chattr("-i", f);
        }
    }

    [Test]
    public void Apply_LayeredPlayerEntryThatMayNotBeMoved_TransactionDoneAndEntryKeptAndReported()
    {
        // The player's own data/level3.pak is where the new version adds one: the layered commit moves it into its
        // backup area, and after the commit to the preserved folder. That last move is refused as an immutable or
        // append-only file refuses it (EPERM): before, Finish failed, apply said "new version in place" and every
        // recovery failed the same way.
        using var s = new PatchScenario("layered-stuck").WithSmallGame().Install();
        s.BuildPatch();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var refusing = new SwappingFileOps(FileOps.Instance, "rename", p => p.Contains("/preserved-", StringComparison.Ordinal),
            () => throw NativeErrors.FromErrno(NativeErrors.EPERM, "rename", "data/level3.pak"));

        var result = TransactionEngine.Apply(new EngineSettings(refusing), s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Layered }, null, CancellationToken.None);

        Assert.That(refusing.FiredAt, Is.Not.Null, "the move was refused");
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(result.EntriesLeftBehind, Is.EqualTo(new[] { "data/level3.pak" }));
        Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Null, "the transaction reached done");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "exactly the new version");
        result.Cleanup.GetAwaiter().GetResult();
        var unswept = new StateLayout(s.InstallDir, null).UnsweptDir(result.TransactionId!);
        Assert.That(Directory.EnumerateFiles(unswept).Select(File.ReadAllText), Does.Contain("my own level"), "kept, never deleted");
        Assert.That(Patcher.Recover(s.InstallDir, s.Options).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
    }
}
