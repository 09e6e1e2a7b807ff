using System.Diagnostics;
using Patching.IO;
using Patching.State;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Hostile;

/// <summary>
/// A program using the install (a running game: its working directory, open or mapped files) is found, the option
/// decides whether to refuse, wait or go layered, and the old tree it still uses after a swap is never deleted under it.
/// </summary>
[Category("Hostile")]
public sealed class RunningProgramTests
{
    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("programs are found through /proc (Linux)");
    }

    [Test]
    public void Apply_ProgramRunningInInstallAndRefuse_RefusedNamingItAndNothingChanged()
    {
        RequireLinux();
        using var s = new PatchScenario("running-refuse").WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.Root);
        using var game = new ProgramInInstall(Path.Join(s.InstallDir, "data"));
        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.Refuse }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallInUse), ex.Message);
        Assert.That(ex.Message, Does.Contain($"pid {game.Id}").And.Contain("working directory"));
        Assert.That(HashListing.Of(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_ProgramStartedFromInstallWorkingElsewhereAndRefuse_RefusedNamingItsMappedImage()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("programs are found through /proc (Linux)");
        using var s = new PatchScenario("running-mapped").WithSmallGame().Install();
        s.BuildPatch();
        // The game's own executable, run with its working directory outside: only its mapping is in the install.
        var image = Path.Join(s.InstallDir, "bin", "game-server");
        Directory.CreateDirectory(Path.GetDirectoryName(image)!);
        File.Copy(File.Exists("/usr/bin/sleep") ? "/usr/bin/sleep" : "/bin/sleep", image);
        using var game = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(image, ["120"]) { WorkingDirectory = s.Root, UseShellExecute = false })!;
        try
        {
            var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.Refuse }));

            Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallInUse), ex.Message);
            Assert.That(ex.Message, Does.Contain($"pid {game.Id}, mapped file {image}"));
        }
        finally
        {
            game.Kill();
            game.WaitForExit();
        }
    }

    [Test]
    public void Apply_ProgramRunningInInstallAndUseLayered_AppliedInPlaceUnderTheProgram()
    {
        RequireLinux();
        using var s = new PatchScenario("running-layered").WithSmallGame().Install();
        s.BuildPatch();
        using var game = new ProgramInInstall(s.InstallDir);
        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.UseLayered });

        Assert.That(result.Strategy, Is.EqualTo(CommitStrategy.Layered));
        Assert.That(game.WorkingDirectory!, Is.EqualTo(s.InstallDir), "the program is still in the install, not in an old tree");
        Assert.That(PatchScenario.Listing(s.InstallDir, p => p.StartsWith(".patcher", StringComparison.Ordinal)), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_ProgramExitsWhileWaiting_AppliedAfterItExitedAndWaitingReported()
    {
        RequireLinux();
        using var s = new PatchScenario("running-wait").WithSmallGame().Install();
        s.BuildPatch();
        using var game = new ProgramInInstall(Path.Join(s.InstallDir, "data"));
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // The game exits during the second wait: the third look finds nobody.
        clock.OnTimer = n =>
        {
            if (n == 2) game.End();
        };
        var progress = new ProgressRecorder();
        var result = Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.Wait, TimeProvider = clock }, progress)
            .GetAwaiter().GetResult();

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(clock.Delays.Take(2), Is.EqualTo(new[] { TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1) }), "waited two polls on the options' clock");
        Assert.That(progress.Reports.Select(r => r.CurrentItem ?? "").Count(i => i.Contains("waiting for 1 program(s)", StringComparison.Ordinal) && i.Contains($"pid {game.Id}", StringComparison.Ordinal)),
            Is.EqualTo(2), "each wait is reported with the program");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_ProgramOutlastsTheWait_RefusedNamingItAfterTheBoundAndNothingChanged()
    {
        RequireLinux();
        using var s = new PatchScenario("running-wait-timeout").WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.Root);
        using var game = new ProgramInInstall(s.InstallDir);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir,
            s.Options with { RunningPrograms = RunningProgramPolicy.Wait, RunningProgramsWait = TimeSpan.FromSeconds(5.5), TimeProvider = clock }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InstallInUse), ex.Message);
        Assert.That(ex.Message, Does.Contain($"pid {game.Id}").And.Contain("after waiting 5.5 s"));
        Assert.That(clock.Delays, Is.EqualTo(Enumerable.Repeat(TimeSpan.FromSeconds(1), 5).Append(TimeSpan.FromSeconds(0.5))), "waits exactly the bound");
        Assert.That(HashListing.Of(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_CancelledWhileWaiting_CancelledAndNothingChanged()
    {
        RequireLinux();
        using var s = new PatchScenario("running-wait-cancel").WithSmallGame().Install();
        s.BuildPatch();
        var before = HashListing.Of(s.Root);
        using var game = new ProgramInInstall(s.InstallDir);
        using var cts = new CancellationTokenSource();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        clock.OnTimer = n =>
        {
            if (n == 3) cts.Cancel();
        };
        var apply = Patcher.ApplyAsync(s.InstallDir, s.PatchDir, s.Options with { RunningPrograms = RunningProgramPolicy.Wait, TimeProvider = clock }, null, cts.Token);

        Assert.That(() => apply.GetAwaiter().GetResult(), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(clock.Delays, Has.Count.EqualTo(3), "stopped at the wait that was cancelled");
        Assert.That(HashListing.Of(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_SwapWhileProgramWorksInInstall_OldTreeKeptSweptAgainAndDeletedAfterExit()
    {
        RequireLinux();
        using var s = new PatchScenario("running-kept").WithSmallGame().Install();
        s.BuildPatch();
        var layout = new StateLayout(s.InstallDir, null);
        using var game = new ProgramInInstall(Path.Join(s.InstallDir, "data"));
        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

        var kept = Path.Join(layout.InUseDir, result.TransactionId!);
        Assert.That(game.WorkingDirectory!, Is.EqualTo(Path.Join(kept, "data")), "the program works in the kept old tree");
        Assert.That(File.ReadAllText(Path.Join(kept, "data", "old-only.txt")), Is.EqualTo("removed in v2"), "the old tree was not deleted under it");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));

        // The game saves after the exchange, by a path relative to where it works.
        File.WriteAllText(Path.Join(game.WorkingDirectory!, "late.sav"), "saved after the exchange");
        var stillRunning = Patcher.Recover(s.InstallDir, s.Options);
        stillRunning.Cleanup.GetAwaiter().GetResult();

        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "data", "late.sav")), Is.EqualTo("saved after the exchange"), "the late save reached the new install");
        Assert.That(Directory.Exists(kept), Is.True, "still used: still kept");

        game.End();
        var afterExit = Patcher.Recover(s.InstallDir, s.Options);
        afterExit.Cleanup.GetAwaiter().GetResult();

        Assert.That(Directory.Exists(layout.InUseDir), Is.False, "nobody uses it any more: deleted");
        Assert.That(Directory.Exists(layout.TrashDir) && Directory.EnumerateFileSystemEntries(layout.TrashDir).Any(), Is.False, "and the trash emptied");
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "data", "late.sav")), Is.EqualTo("saved after the exchange"));
    }

    [Test]
    public void Apply_GameSavingByRelativePathAfterExchange_SavesKeptAndReachTheInstallAtNextApply()
    {
        RequireLinux();
        using var s = new PatchScenario("running-saves").WithSmallGame().Install();
        s.BuildPatch();
        PatchScenario.Write(s.InstallDir, "saves/slot1.sav", "before the update");
        var layout = new StateLayout(s.InstallDir, null);
        using var game = new ProgramInInstall(s.InstallDir);
        // The default options: the launcher did not close the game, and the background cleanup runs to its end.
        var result = Patcher.Apply(s.InstallDir, s.PatchDir, new PatcherOptions { TrustedKeys = [s.PublicKey], Strategy = CommitStrategy.Swap });
        result.Cleanup.GetAwaiter().GetResult();
        var gameDir = game.WorkingDirectory!;
        // Saved as games do: a new file renamed over the old one (a write in place would reach the install at once,
        // through the link staging made).
        File.WriteAllText(Path.Join(gameDir, "saves", "slot1.sav.tmp"), "saved after the exchange");
        File.Move(Path.Join(gameDir, "saves", "slot1.sav.tmp"), Path.Join(gameDir, "saves", "slot1.sav"), overwrite: true);
        File.WriteAllText(Path.Join(gameDir, "saves", "slot2.sav"), "a new slot");
        game.End();

        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "saves", "slot1.sav")), Is.EqualTo("before the update"), "the sweep carried the save over, before the late one");
        Assert.That(gameDir, Is.EqualTo(Path.Join(layout.InUseDir, result.TransactionId!)));

        // The next apply (to a version 3) first sweeps the kept tree: the newer saves win.
        var v3 = s.Dir("v3");
        PatchScenario.CopyTree(s.NewTree, v3);
        PatchScenario.Write(v3, "game.exe", "engine v3", executable: true);
        var patch3 = Path.Join(s.Root, "patch3");
        s.BuildPatch("3.0.0", "2.0.0", patch3, s.NewTree, v3);
        Assert.That(Patcher.Apply(s.InstallDir, patch3, s.Options).Status, Is.EqualTo(ApplyStatus.Applied));

        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "saves", "slot1.sav")), Is.EqualTo("saved after the exchange"));
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "saves", "slot2.sav")), Is.EqualTo("a new slot"));
        Assert.That(Directory.Exists(layout.InUseDir), Is.False, "the game exited: the kept tree is gone");
    }

    [Test]
    public void Recover_KeptTreeWithoutItsList_NothingMovedAndKeptAsUnswept()
    {
        RequireLinux();
        using var s = new PatchScenario("running-nolist").WithSmallGame().Install();
        s.BuildPatch();
        var layout = new StateLayout(s.InstallDir, null);
        using var game = new ProgramInInstall(s.InstallDir);
        var txId = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap }).TransactionId!;
        game.End();
        File.Delete(Path.Join(layout.InUseDir, txId + ".owned"));

        Patcher.Recover(s.InstallDir, s.Options).Cleanup.GetAwaiter().GetResult();

        Assert.That(File.ReadAllText(Path.Join(layout.UnsweptDir(txId), "data", "old-only.txt")), Is.EqualTo("removed in v2"), "kept, never deleted");
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "no old-version file taken for the player's");
        Assert.That(Directory.Exists(layout.InUseDir), Is.False);
    }

    [Test]
    public void Recover_ListLeftWithoutItsTree_ListRemoved()
    {
        RequireLinux();
        using var s = new PatchScenario("running-orphan-list").WithSmallGame().Install();
        s.BuildPatch();
        var layout = new StateLayout(s.InstallDir, null);
        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });
        // A crash after the released tree went to the trash, before its list was deleted.
        Directory.CreateDirectory(layout.InUseDir);
        File.WriteAllText(Path.Join(layout.InUseDir, "20260101000000-0badc0de.owned"), "game.exe");

        var result = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That(result.Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(Directory.Exists(layout.InUseDir), Is.False);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_SwapWithNobodyInInstall_OldTreeDeletedNothingKept()
    {
        RequireLinux();
        using var s = new PatchScenario("running-none").WithSmallGame().Install();
        s.BuildPatch();
        var layout = new StateLayout(s.InstallDir, null);

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = CommitStrategy.Swap });

        Assert.That(Directory.Exists(layout.InUseDir), Is.False);
        Assert.That(Directory.Exists(layout.TrashDir) && Directory.EnumerateFileSystemEntries(layout.TrashDir).Any(), Is.False);
    }

    [Test]
    public void WindowsFiles_TreeLargerThanTheBound_ExecutablesAndLibrariesFirstUpToTheBound()
    {
        using var dir = new TempDir("rm-files");
        for (var i = 0; i < RunningPrograms.MaxRegisteredFiles + 10; i++) PatchScenario.Write(dir.Path, $"data/{i:D5}.pak", "x");
        PatchScenario.Write(dir.Path, "zz/engine.dll", "x");
        PatchScenario.Write(dir.Path, "zz/game.exe", "x");

        var files = RunningPrograms.WindowsFiles(dir.Path);

        Assert.That(files, Has.Length.EqualTo(RunningPrograms.MaxRegisteredFiles));
        Assert.That(files.Take(2).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "engine.dll", "game.exe" }));
    }

    [Test]
    public void Using_WindowsProcessWritingAFileOfTheInstall_FoundThroughRestartManager()
    {
        if (!OperatingSystem.IsWindows()) Assert.Ignore("the Restart Manager is Windows'");
        using var dir = new TempDir("rm-using");
        PatchScenario.Write(dir.Path, "game.exe", "x");
        // cmd holds log.txt open for writing while ping runs.
        using var game = Process.Start(new ProcessStartInfo("cmd.exe", ["/c", "ping -n 30 127.0.0.1 > log.txt"]) { WorkingDirectory = dir.Path, UseShellExecute = false })!;
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!File.Exists(Path.Join(dir.Path, "log.txt")) && DateTime.UtcNow < deadline) Thread.Sleep(50);

            var users = RunningPrograms.Using(dir.Path);

            Assert.That(users.Select(u => u.ProcessId), Does.Contain(game.Id));
        }
        finally
        {
            game.Kill(entireProcessTree: true);
            game.WaitForExit();
        }
    }
}
