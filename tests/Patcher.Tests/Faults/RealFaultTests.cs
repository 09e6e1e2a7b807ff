using System.Diagnostics;
using Patching.IO;
using Patching.Tests.Commit;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Faults;

/// <summary>
/// Faults made real rather than injected: a disk that fills up (tmpfs), read-only directories (read-only mounts,
/// because root ignores permission bits), a file the engine may not remove (chattr +i), and a journal or state
/// directory that vanished or was corrupted between runs. Each ends with a clear <see cref="PatcherException"/>
/// and the old version intact, or a complete new version; never a mix.
/// </summary>
[Category("Faults")]
[NonParallelizable]
public sealed class RealFaultTests
{
    // ---------------------------------------------------------------- full disk (tmpfs)

    [Test]
    public void Apply_TinyDisk_InsufficientSpaceBeforeAnythingChanges()
    {
        using var w = new FaultWorld("tiny-disk");
        using var temp = TempDir.ForCurrentTest();
        using var mount = Mount.TmpfsOrIgnore(temp.Dir("mnt"), "2m");
        var install = w.NewInstall(temp["mnt"]);
        var parent = Path.GetDirectoryName(install)!;
        var before = PatchScenario.Listing(parent);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(install, w.S.PatchDir, w.Options()));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.InsufficientSpace), ex.Message);
        Assert.That(PatchScenario.Listing(parent), Is.EqualTo(before), "refused before the state directory was even created");
    }

    [TestCase(PatchPhase.Staging, TestName = "Apply_DiskFillsUpWhileStaging_DiskFullAndOldVersionByteIdentical")]
    [TestCase(PatchPhase.Committing, TestName = "Apply_DiskFillsUpJustBeforeCommit_ErrorAndOneCompleteVersionThenRecovers")]
    public void Apply_DiskFillsUp_ClearErrorAndNeverAMix(PatchPhase when)
    {
        using var w = new FaultWorld("fills-up");
        using var temp = TempDir.ForCurrentTest();
        // Big enough for the free-space preflight (writes + a 16 MiB margin); another program then takes the rest.
        using var mount = Mount.TmpfsOrIgnore(temp.Dir("mnt"), "24m");
        var install = w.NewInstall(temp["mnt"]);
        var before = PatchScenario.Listing(install);
        var filler = Path.Join(temp["mnt"], "filler");
        var filled = false;
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != when || filled) return;
            filled = true;
            FillUp(filler);
        });

        Exception? thrown = null;
        try
        {
            TransactionEngine.Apply(install, w.S.PatchDir, w.Options(), progress, CancellationToken.None);
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        Assert.That(filled, Is.True, $"the disk was filled at {when}");
        var ended = w.Classify(install);
        TestContext.Out.WriteLine($"disk full at {when}: {(thrown is null ? "applied" : thrown.GetType().Name + " " + (thrown as PatcherException)?.Code + ": " + thrown.Message)}; install is {ended}");
        Assert.That(thrown, Is.Not.Null, "the apply cannot succeed on a full disk");
        Assert.That(w.Problems(install), Is.Empty, "one complete version, user files intact");
        if (when == PatchPhase.Staging)
            Assert.That(PatchScenario.Listing(install), Is.EqualTo(before), "the old version byte-identical, user files included");

        // Space comes back; the app's next start recovers and the launcher's next apply ends on the new version.
        File.Delete(filler);
        Patcher.Recover(install, w.Options());
        if (w.Classify(install) != FaultWorld.Ended.New) Patcher.Apply(install, w.S.PatchDir, w.Options());
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(w.Problems(install), Is.Empty);
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);

        // What the launcher was told: the cause, with its code (the journal write that follows the failure also hits
        // the full disk; that SQLITE_FULL must not mask it or escape as a raw SqliteException).
        Assert.That(thrown, Is.TypeOf<PatcherException>(), thrown!.ToString());
        Assert.That(((PatcherException)thrown).Code, Is.EqualTo(PatchErrorCode.DiskFull), thrown.Message);
    }

    // ---------------------------------------------------------------- the journal refuses to commit

    /// <summary>
    /// The journal stops taking writes as the commit begins (its write-ahead log made immutable, so every SQLite commit
    /// fails with an I/O error, as on a failing disk): the apply must fail with a clear error, and once the journal can
    /// be written again, the next Recover must leave one complete version that the journal agrees with.
    /// </summary>
    [TestCase("swap")]
    [TestCase("layered")]
    public void Apply_JournalCannotCommitDuringTheCommit_ErrorThenRecoverLeavesOneVersion(string strategy)
    {
        if (!OperatingSystem.IsLinux() || !Mount.IsRoot) Assert.Ignore("chattr +i (the one 'permission denied' root cannot ignore) needs root on Linux");
        using var w = new FaultWorld("journal-commit-fails", extraFiles: 800); // 80 changed files: more than one batch of layered rows
        var install = w.NewInstall();
        // Asked before the apply: an Ignore thrown from inside it would leave a transaction pending and be caught below.
        var probe = Path.Join(w.S.Root, "chattr-probe");
        File.WriteAllText(probe, "probe");
        if (!Chattr("+i", probe)) Assert.Ignore("the immutable attribute cannot be set here (file system, or no CAP_LINUX_IMMUTABLE)");
        Chattr("-i", probe);
        var wal = Path.Join(FaultWorld.StateDir(install), "journal.db-wal");
        bool attempted = false, frozen = false;
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != PatchPhase.Committing || attempted) return;
            attempted = true;
            frozen = Chattr("+i", wal);
        });

        Exception? thrown = null;
        try
        {
            TransactionEngine.Apply(install, w.S.PatchDir, w.Options(strategy), progress, CancellationToken.None);
        }
        catch (Exception ex)
        {
            thrown = ex;
        }
        finally
        {
            Chattr("-i", wal);
        }

        Assert.That(frozen, Is.True, "the journal's write-ahead log was made immutable when the commit began");
        TestContext.Out.WriteLine($"{strategy}: {(thrown as PatcherException)?.Code} {thrown?.Message}; install is {w.Classify(install)}");
        Assert.That(thrown, Is.TypeOf<PatcherException>(), thrown?.ToString());
        // The swap's switch is one rename: one complete version even before recovery. The layered strategy's files may be a
        // mix until recovery (docs/windows.md).
        if (strategy == "swap") Assert.That(w.Problems(install), Is.Empty, "one complete version, user files intact, even before recovery");

        Patcher.Recover(install, w.Options(strategy));

        var ended = w.Classify(install);
        Assert.That(ended, Is.Not.EqualTo(FaultWorld.Ended.Neither));
        Assert.That(w.Problems(install), Is.Empty);
        var status = Patcher.Status(install);
        Assert.That(status.PendingTransactionId, Is.Null, "recovery finished the transaction");
        Assert.That(status.InstalledVersion, Is.EqualTo(ended == FaultWorld.Ended.New ? "2.0.0" : null), "the journal agrees with the tree");
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
    }

    // ---------------------------------------------------------------- read-only directories

    [Test]
    public void Apply_EverythingReadOnly_AccessDeniedAndNothingChanged()
    {
        using var w = new FaultWorld("read-only");
        using var temp = TempDir.ForCurrentTest();
        using var mount = Mount.TmpfsOrIgnore(temp.Dir("mnt"), "24m");
        var install = w.NewInstall(temp["mnt"]);
        var parent = Path.GetDirectoryName(install)!;
        var before = PatchScenario.Listing(parent);
        mount.RemountReadOnly();

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(install, w.S.PatchDir, w.Options()));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.AccessDenied), ex.Message);
        Assert.That(PatchScenario.Listing(parent), Is.EqualTo(before));
        Assert.That(Patcher.Recover(install).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending), "recovery on a read-only disk with nothing pending costs one check");
    }

    /// <summary>
    /// An install Patcher put there, then found on a read-only file system (a read-only disk image, a write-protected
    /// share): Status and Verify only read, so they must answer; Recover with nothing pending costs its one check.
    /// </summary>
    [Test]
    public void StatusAndVerify_InstallOnReadOnlyFileSystem_Answer()
    {
        using var w = new FaultWorld("read-only-verify");
        using var temp = TempDir.ForCurrentTest();
        using var mount = Mount.TmpfsOrIgnore(temp.Dir("mnt"), "24m");
        // A folder name SQLite's URI filenames would misread if it were not escaped ('%41' is not an 'A', '#' and '?' are
        // path, and off Windows so is a backslash).
        var install = w.NewInstall(Path.Join(temp["mnt"], @"odd %41 #name? back\slash"));
        Patcher.Apply(install, w.S.PatchDir, w.Options()).Cleanup.Wait();
        var before = PatchScenario.Listing(Path.GetDirectoryName(install)!);
        mount.RemountReadOnly();

        var status = Patcher.Status(install, w.Options());
        var report = Patcher.Verify(install, w.Options());

        Assert.That(status.InstalledVersion, Is.EqualTo("2.0.0"));
        Assert.That(status.PendingTransactionId, Is.Null);
        Assert.That(report.IsIntact, Is.True, $"missing {string.Join(",", report.Missing)}; modified {string.Join(",", report.Modified)}");
        Assert.That(Patcher.Recover(install, w.Options()).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(PatchScenario.Listing(Path.GetDirectoryName(install)!), Is.EqualTo(before));
    }

    /// <summary>
    /// The install is a read-only bind mount of itself. A bind mount shares its device id with the parent; the
    /// engine recognises it through statx's mount id. A mount point cannot be renamed, so the engine chooses the
    /// layered strategy with its state inside the install, which the read-only mount refuses: AccessDenied before
    /// anything changes. Once unmounted, the next apply succeeds.
    /// </summary>
    [Test]
    public void Apply_InstallDirectoryIsReadOnlyMount_AccessDeniedOldIntactThenAppliesAfterUnmount()
    {
        using var w = new FaultWorld("install-ro");
        var install = w.NewInstall();
        var parent = Path.GetDirectoryName(install)!;
        var before = PatchScenario.Listing(parent);
        PatcherException? ex;
        using (Mount.ReadOnlyBindOrIgnore(install))
        {
            ex = Assert.Throws<PatcherException>(() => Patcher.Apply(install, w.S.PatchDir, w.Options() with { Strategy = CommitStrategy.Auto }));
            Assert.That(PatchScenario.Listing(parent), Is.EqualTo(before), "the old version and everything beside it byte-identical");
            Assert.That(Patcher.Recover(install).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        }

        TestContext.Out.WriteLine($"read-only bind-mounted install: {ex!.Code}: {ex.Message}");
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.AccessDenied), ex.Message);
        Patcher.Apply(install, w.S.PatchDir, w.Options());
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(w.Problems(install), Is.Empty);
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
    }

    /// <summary>A writable bind-mounted install cannot be swapped (EBUSY on rename): auto picks the layered strategy up front.</summary>
    [Test]
    public void Apply_InstallDirectoryIsBindMount_AutoChoosesLayeredAndApplies()
    {
        using var w = new FaultWorld("install-bind");
        var install = w.NewInstall();
        ApplyResult result;
        using (Mount.BindOrIgnore(install))
        {
            result = Patcher.Apply(install, w.S.PatchDir, w.Options() with { Strategy = CommitStrategy.Auto });
            // The state lives inside the install (nothing beside a mount point can be renamed with it).
            Assert.That(PatchScenario.Listing(install, rel => FaultWorld.IsUserPath(rel) || rel == ".patcher" || rel.StartsWith(".patcher/", StringComparison.Ordinal)),
                Is.EqualTo(w.NewListing));
        }

        Assert.That(result.Strategy, Is.EqualTo(CommitStrategy.Layered));
        Assert.That(Patcher.Status(install).InstalledVersion, Is.EqualTo("2.0.0"));
    }

    [Test]
    public void Apply_StateDirectoryReadOnly_AccessDeniedNotBusyAndOldIntact()
    {
        using var w = new FaultWorld("state-ro");
        // A first apply creates the state directory and its journal; then it becomes read-only.
        var install = w.NewInstall();
        var full = Path.Join(w.S.Root, "full-v1");
        w.S.BuildFull(w.S.OldTree, full, "1.0.0");
        Patcher.Apply(install, full, w.Options());
        var before = PatchScenario.Listing(install);
        using var mount = Mount.ReadOnlyBindOrIgnore(FaultWorld.StateDir(install));

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(install, w.S.PatchDir, w.Options()));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.AccessDenied), "a read-only state directory is not 'busy': a launcher would retry forever: " + ex.Message);
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(before));
    }

    // ---------------------------------------------------------------- a file that cannot be removed

    [Test]
    public void Apply_OldFileCannotBeRemoved_AppliedAndTheNextRecoverRemovesTheTrash()
    {
        if (!OperatingSystem.IsLinux() || !Mount.IsRoot) Assert.Ignore("chattr +i (the one 'permission denied' root cannot ignore) needs root on Linux");
        using var w = new FaultWorld("immutable");
        var install = w.NewInstall();
        var stuck = Path.Join(install, "data", "old-only.txt"); // removed by the new version
        if (!Chattr("+i", stuck)) Assert.Ignore("this file system does not support the immutable attribute");
        var log = new ListLogger();
        var trash = Path.Join(FaultWorld.StateDir(install), "trash");
        try
        {
            // Removing the old tree comes after the done row: the update is complete, the failure only logged.
            var result = Patcher.Apply(install, w.S.PatchDir, w.Options() with { Logger = log });

            Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
            Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
            Assert.That(w.Problems(install), Is.Empty);
            Assert.That(Patcher.Status(install).PendingTransactionId, Is.Null, "nothing is pending: only deleting old files is left");
            Assert.That(Directory.EnumerateFiles(trash, "old-only.txt", new EnumerationOptions { RecurseSubdirectories = true }).Count(), Is.EqualTo(1));
            Assert.That(log.Lines, Has.Some.Contains("Could not delete the old version's files"));
        }
        finally
        {
            foreach (var f in Directory.EnumerateFiles(Path.GetDirectoryName(install)!, "old-only.txt", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
                Chattr("-i", f);
        }

        var recovered = Patcher.Recover(install);
        Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(recovered.Cleanup.Wait(TimeSpan.FromSeconds(60)), Is.True, "the deletion runs off the app's start-up path");
        Assert.That(Directory.Exists(trash), Is.False, "the app's next start removed what the apply could not");
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
    }

    // ---------------------------------------------------------------- journal and state directory lost between runs

    [Test]
    public void Apply_JournalDeletedAfterInstall_AppliesAgainstTheDiskAndSucceeds()
    {
        using var w = new FaultWorld("journal-deleted");
        var install = InstallV1ThroughPatcher(w);
        DeleteJournal(install);

        var result = Patcher.Apply(install, w.S.PatchDir, w.Options());

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(w.Problems(install), Is.Empty);
        Assert.That(Patcher.Status(install).InstalledVersion, Is.EqualTo("2.0.0"));
    }

    [Test]
    public void Apply_JournalCorruptedWithNothingPending_MovedAsideAndApplySucceeds()
    {
        using var w = new FaultWorld("journal-corrupt");
        var install = InstallV1ThroughPatcher(w);
        var journal = Path.Join(FaultWorld.StateDir(install), "journal.db");
        File.WriteAllBytes(journal, PatchScenario.Bytes("not a database", 8192));

        Patcher.Apply(install, w.S.PatchDir, w.Options());

        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(Directory.GetFiles(FaultWorld.StateDir(install), "journal.db.corrupt-*"), Is.Not.Empty, "the corrupt journal is kept for inspection");
    }

    [Test]
    public void Recover_JournalCorruptedWhileTransactionPending_JournalCorruptAndOldIntact()
    {
        using var w = new FaultWorld("journal-corrupt-pending");
        var install = PendingAfterFailedExchange(w);
        var before = PatchScenario.Listing(install);
        // The whole journal: the killed applier's write-ahead log is still beside it (Status only reads, it does not
        // checkpoint), and SQLite would read the pending rows from there.
        var journal = Path.Join(FaultWorld.StateDir(install), "journal.db");
        File.WriteAllBytes(journal, PatchScenario.Bytes("garbage", 8192));
        File.Delete(journal + "-wal");
        File.Delete(journal + "-shm");

        var recover = Assert.Throws<PatcherException>(() => Patcher.Recover(install, w.Options()));
        var apply = Assert.Throws<PatcherException>(() => Patcher.Apply(install, w.S.PatchDir, w.Options()));

        Assert.That((recover!.Code, apply!.Code), Is.EqualTo((PatchErrorCode.JournalCorrupt, PatchErrorCode.JournalCorrupt)));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(before), "nothing guessed, nothing changed");
    }

    [Test]
    public void Recover_JournalDeletedWhileTransactionPending_OldVersionStaysAndNextApplySucceeds()
    {
        using var w = new FaultWorld("journal-deleted-pending");
        var install = PendingAfterFailedExchange(w);
        var before = PatchScenario.Listing(install);
        DeleteJournal(install);

        var recovered = Patcher.Recover(install, w.Options());

        Assert.That(PatchScenario.Listing(install), Is.EqualTo(before), $"after {recovered.Outcome} the old version is untouched");
        Assert.That(Patcher.Apply(install, w.S.PatchDir, w.Options()).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(w.Problems(install), Is.Empty);
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
        // With the journal gone the staged tree cannot be attributed; it is kept under a name that says so.
        Assert.That(Directory.GetDirectories(FaultWorld.StateDir(install), "orphaned-*"), Has.Length.EqualTo(1));
    }

    [Test]
    public void Recover_StateDirectoryDeletedWhileTransactionPending_OldVersionStaysAndNextApplySucceeds()
    {
        using var w = new FaultWorld("state-deleted-pending");
        var install = PendingAfterFailedExchange(w);
        var before = PatchScenario.Listing(install);
        Directory.Delete(FaultWorld.StateDir(install), recursive: true);

        Assert.That(Patcher.Recover(install, w.Options()).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(PatchScenario.Listing(install), Is.EqualTo(before));
        Assert.That(Patcher.Apply(install, w.S.PatchDir, w.Options()).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
    }

    [Test]
    public void Recover_StateDirectoryDeletedAfterInstall_NothingPendingAndInstallUntouched()
    {
        using var w = new FaultWorld("state-deleted");
        var install = w.NewInstall();
        Patcher.Apply(install, w.S.PatchDir, w.Options());
        Directory.Delete(FaultWorld.StateDir(install), recursive: true);

        Assert.That(Patcher.Recover(install).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(Patcher.Status(install).InstalledVersion, Is.Null, "the record of what is installed went with the state directory");
        Assert.That(Assert.Throws<PatcherException>(() => Patcher.Verify(install))!.Code, Is.EqualTo(PatchErrorCode.NotManagedByPatcher));
    }

    // ---------------------------------------------------------------- helpers

    private static string InstallV1ThroughPatcher(FaultWorld w)
    {
        var install = w.NewInstall();
        var full = Path.Join(w.S.Root, "full-v1");
        if (!Directory.Exists(full)) w.S.BuildFull(w.S.OldTree, full, "1.0.0");
        Patcher.Apply(install, full, w.Options());
        return install;
    }

    /// <summary>
    /// An install with a transaction pending in backup-complete and the old version intact: the exchange failed
    /// (EIO), as a kill just before it would leave it.
    /// </summary>
    /// <summary>
    /// An install whose apply died (SIGKILL, in a child process) just before the exchange: the journal says
    /// backup-complete, the staged tree is complete, the install is still the old version.
    /// </summary>
    private static string PendingAfterFailedExchange(FaultWorld w)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        var trust = Path.Join(w.S.Root, "trust.pub");
        File.WriteAllText(trust, w.S.PublicKey);
        var log = Path.Join(w.S.Root, "points-" + Guid.NewGuid().ToString("N") + ".log");
        var dry = CrashHost.Start(["apply", w.NewInstall(), w.S.PatchDir, trust, "swap"], crashLog: log);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var exchange = Array.FindIndex(File.ReadAllLines(log), p => p.Contains(" exchange ", StringComparison.Ordinal)) + 1;
        Assert.That(exchange, Is.GreaterThan(0));

        var install = w.NewInstall();
        Assert.That(CrashHost.Start(["apply", install, w.S.PatchDir, trust, "swap"], crashAt: exchange).Killed, Is.True);
        Assert.That(Patcher.Status(install).PendingState, Is.EqualTo(PendingPhase.BackupComplete));
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.Old));
        return install;
    }

    private static void DeleteJournal(string install)
    {
        foreach (var f in Directory.GetFiles(FaultWorld.StateDir(install), "journal.db*")) File.Delete(f);
    }

    /// <summary>Takes every free byte of the file system holding <paramref name="path"/>, as another program might.</summary>
    private static void FillUp(string path)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        foreach (var chunk in new[] { 1 << 20, 1 << 16, 4096, 512, 1 })
        {
            var buffer = new byte[chunk];
            try
            {
                while (true) f.Write(buffer);
            }
            catch (IOException ex) when (NativeErrors.IsDiskFull(ex))
            {
            }
        }
    }

    private static bool Chattr(string flag, string path)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true, UseShellExecute = false })!;
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
