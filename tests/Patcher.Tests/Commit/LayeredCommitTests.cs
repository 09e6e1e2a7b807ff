using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.Commit;

/// <summary>
/// The layered commit through the file-operations seam: the real file system, with Windows locking rules
/// simulated by <see cref="LockingFileOps"/> and a <see cref="FakeTimeProvider"/> so no test sleeps.
/// </summary>
public sealed class LayeredCommitTests
{
    private static readonly string[] UserFiles = ["saves/slot1.sav", "data/user-mod.txt", "legacy/my-notes.txt"];

    private static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves" or "legacy";

    private static PatchScenario Scenario()
    {
        var s = new PatchScenario("layered").WithSmallGame(extraFiles: 4).Install();
        foreach (var f in UserFiles) PatchScenario.Write(s.InstallDir, f, "user " + f);
        s.BuildPatch();
        return s;
    }

    private static PatcherOptions Options(PatchScenario s, FakeTimeProvider time, ListLogger log, TimeSpan? budget = null) => s.Options with
    {
        Strategy = CommitStrategy.Layered,
        TimeProvider = time,
        Logger = log,
        FileLockTimeout = budget ?? TimeSpan.FromSeconds(10),
    };

    private static ApplyResult Apply(PatchScenario s, IFileOps fs, PatcherOptions options) =>
        TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, options, null, CancellationToken.None);

    private static string StateDir(PatchScenario s) => Path.Join(s.ParentDir, ".game.patcher");

    private static List<string> Leftovers(string stateDir) =>
        !Directory.Exists(stateDir) ? [] : Directory.EnumerateFileSystemEntries(stateDir).Select(p => Path.GetFileName(p)!)
            .Where(n => n.StartsWith("staging-", StringComparison.Ordinal) || n.StartsWith("backup-", StringComparison.Ordinal) || n == "pending").ToList();

    [Test]
    public void Apply_LayeredForced_TreeEqualsNewVersionAndUserFilesKept()
    {
        using var s = Scenario();
        var log = new ListLogger();

        var result = Apply(s, FileOps.Instance, Options(s, new FakeTimeProvider(), log));

        Assert.That(result.Strategy, Is.EqualTo(CommitStrategy.Layered));
        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        foreach (var f in UserFiles) Assert.That(File.ReadAllText(Path.Join(s.InstallDir, f)), Is.EqualTo("user " + f));
        Assert.That(Leftovers(StateDir(s)), Is.Empty);
        Assert.That(Patcher.Verify(s.InstallDir).IsIntact, Is.True);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Plan_DirectoryRenamedOnlyInCase_OldRemovedAndNewMade(bool namesIgnoreCase)
    {
        // Windows and macOS: 'maps' is found where 'Maps' is, but 'Maps' is removed before the files are placed, so
        // 'maps' must be made all the same (the Wine scenario case-only-renames applies such a patch for real).
        // A stand-in for that file system: 'maps' exists here as the directory the stat would have found.
        using var s = new PatchScenario("casedir").WithSmallGame();
        PatchScenario.Write(s.OldTree, "Maps/Forest.map", PatchScenario.Bytes("forest-old", 5_000));
        PatchScenario.Write(s.NewTree, "maps/forest.map", PatchScenario.Bytes("forest-new", 5_100));
        s.Install();
        s.BuildPatch();
        Directory.CreateDirectory(Path.Join(s.InstallDir, "maps"));
        var engine = new EngineSettings(FileOps.Instance);
        var manifest = Patching.Sources.PatchPackage.Open(s.PatchDir, s.Options.Limits).Manifest;
        var plan = Patching.Staging.ApplyPlan.Create(FileOps.Instance, new Patching.Staging.PlanInput(s.InstallDir, manifest, null), null, CancellationToken.None);

        var (ops, _) = LayeredCommit.Plan(FileOps.Instance, engine.Layout(s.InstallDir, s.Options), plan, namesIgnoreCase);

        Assert.That(ops.Any(o => o.Kind == LayeredOpKind.RemoveDir && o.Path == "Maps"), Is.True);
        Assert.That(ops.Any(o => o.Kind == LayeredOpKind.MakeDir && o.Path == "maps"), Is.EqualTo(namesIgnoreCase),
            "a directory found at the new path is made again only where it may be the old one");
        Assert.That(ops.FindIndex(o => o.Path == "Maps" && o.Kind == LayeredOpKind.RemoveDir), Is.LessThan(ops.FindIndex(o => o.Kind == LayeredOpKind.Place)));
        Assert.That(ops.Any(o => o.Kind == LayeredOpKind.Displace && o.Path == "Maps/Forest.map"), Is.True);
        Assert.That(ops.Any(o => o.Kind == LayeredOpKind.Place && o.Path == "maps/forest.map"), Is.True);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Plan_InstallSpellsADirectoryOtherwiseThanTheManifests_TakenUnderTheirSpellingWhereNamesIgnoreCase(bool namesIgnoreCase)
    {
        // After a case-only rename of 'Maps' to 'maps' while the player kept a file in it, the install keeps 'Maps' (Wine
        // scenario case-only-rename-with-player-file). The next update names 'maps/...': before the fix its base check
        // refused the install for good. A stand-in for Windows and macOS, where either spelling reaches the same entry.
        using var s = new PatchScenario("casespelt").WithSmallGame();
        PatchScenario.Write(s.OldTree, "maps/desert.map", PatchScenario.Bytes("desert", 6_000));
        PatchScenario.Write(s.OldTree, "maps/forest.map", PatchScenario.Bytes("forest", 5_000));
        PatchScenario.Write(s.NewTree, "maps/desert.map", PatchScenario.Bytes("desert-3", 6_100));
        PatchScenario.Write(s.NewTree, "maps/forest.map", PatchScenario.Bytes("forest", 5_000));
        s.Install();
        s.BuildPatch();
        Directory.Move(Path.Join(s.InstallDir, "maps"), Path.Join(s.InstallDir, "Maps"));
        PatchScenario.Write(s.InstallDir, "Maps/custom.map", PatchScenario.Bytes("the player's map", 300));
        var manifest = Patching.Sources.PatchPackage.Open(s.PatchDir, s.Options.Limits).Manifest;
        Patching.Staging.ApplyPlan Create() => Patching.Staging.ApplyPlan.Create(FileOps.Instance, new Patching.Staging.PlanInput(s.InstallDir, manifest, null) { NamesIgnoreCase = namesIgnoreCase }, null, CancellationToken.None);

        if (!namesIgnoreCase)
        {
            // Where names keep their case, 'Maps' is another directory: 'maps/forest.map' is really missing.
            Assert.That(Assert.Throws<PatcherException>(() => Create())!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
            return;
        }

        var plan = Create();
        var fs = new StatIgnoringCaseFileOps(FileOps.Instance);
        var (ops, _) = LayeredCommit.Plan(fs, new EngineSettings(fs).Layout(s.InstallDir, s.Options), plan, namesIgnoreCase);

        Assert.That(plan.Files.Single(f => f.File.Path == "maps/forest.map").ReuseFrom, Is.EqualTo("maps/forest.map"), "the unchanged map is reused where it is");
        Assert.That(plan.UserEntries.Select(e => e.Path), Does.Contain("maps/custom.map"), "the player's map is recognised as the player's");
        Assert.That(ops.Where(o => o.Path.StartsWith("maps", StringComparison.OrdinalIgnoreCase)).Select(o => $"{o.Kind.ToText()} {o.Path}"),
            Is.EqualTo(new[] { "place maps/desert.map" }), "only the changed map is replaced; the directory is neither removed nor made");
    }

    [Test]
    public void Plan_InstallSpellsADirectoryAThirdWayWhileThePatchChangesItsCase_TakenUnderTheOldVersionsSpelling()
    {
        // The patch renames 'maps' to 'MAPS'; the install has 'Maps'. Its files are the old version's, so they must be
        // found under the old spelling: under the new one the base check missed them (found in review).
        using var s = new PatchScenario("casethird").WithSmallGame();
        PatchScenario.Write(s.OldTree, "maps/desert.map", PatchScenario.Bytes("desert", 6_000));
        PatchScenario.Write(s.NewTree, "MAPS/desert.map", PatchScenario.Bytes("desert", 6_000));
        s.Install();
        s.BuildPatch();
        Directory.Move(Path.Join(s.InstallDir, "maps"), Path.Join(s.InstallDir, "Maps"));
        var manifest = Patching.Sources.PatchPackage.Open(s.PatchDir, s.Options.Limits).Manifest;

        var plan = Patching.Staging.ApplyPlan.Create(FileOps.Instance, new Patching.Staging.PlanInput(s.InstallDir, manifest, null) { NamesIgnoreCase = true }, null, CancellationToken.None);

        Assert.That(plan.Files.Single(f => f.File.Path == "MAPS/desert.map").ReuseFrom, Is.EqualTo("maps/desert.map"));
    }

    /// <summary>Stat finds an entry under any spelling of its name, as on NTFS or APFS (by default).</summary>
    private sealed class StatIgnoringCaseFileOps(IFileOps inner) : FileOpsDecorator(inner)
    {
        public override EntryInfo Stat(string path) => Inner.Stat(Resolve(path));

        private string Resolve(string path)
        {
            var parent = Path.GetDirectoryName(path);
            if (Inner.Stat(path).Kind != EntryKind.Missing || parent is null) return path;
            var resolved = Resolve(parent);
            if (Inner.Stat(resolved).Kind != EntryKind.Directory) return path;
            var spelt = Inner.ListNames(resolved).FirstOrDefault(n => string.Equals(n, Path.GetFileName(path), StringComparison.OrdinalIgnoreCase));
            return spelt is null ? path : Path.Join(resolved, spelt);
        }
    }

    [Test]
    public void Apply_LayeredUnchangedFiles_AreNotTouched()
    {
        using var s = Scenario();
        var unchanged = Path.Join(s.InstallDir, "data/level1.pak");
        var before = File.GetLastWriteTimeUtc(unchanged);
        var inode = OperatingSystem.IsLinux() ? Transaction.ApplyTests.Inode(unchanged) : 0;

        var result = Apply(s, FileOps.Instance, Options(s, new FakeTimeProvider(), new ListLogger()));

        Assert.That(File.GetLastWriteTimeUtc(unchanged), Is.EqualTo(before));
        if (OperatingSystem.IsLinux()) Assert.That(Transaction.ApplyTests.Inode(unchanged), Is.EqualTo(inode), "same file, never renamed");
        Assert.That(result.FilesReused, Is.GreaterThan(0));
    }

    [TestCase(5)]
    [TestCase(32)]
    [TestCase(33)]
    public void Apply_TargetLockedThenReleased_SucceedsThroughRetryLayersWithoutSleeping(int win32Error)
    {
        using var s = Scenario();
        var fs = new LockingFileOps();
        var target = Path.Join(s.InstallDir, "data/level2.pak");
        fs.LockFor(target, attempts: 4, win32Error);
        var time = new FakeTimeProvider();
        var log = new ListLogger();
        var wall = System.Diagnostics.Stopwatch.StartNew();

        Apply(s, fs, Options(s, time, log));

        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(fs.Refusals(target), Is.EqualTo(4));
        Assert.That(time.Elapsed, Is.GreaterThan(TimeSpan.Zero).And.LessThan(TimeSpan.FromSeconds(10)), "the retries waited on the fake clock, within the budget");
        Assert.That(time.Delays, Is.Ordered.And.Unique, "backoff is progressive");
        Assert.That(time.Delays, Has.Count.EqualTo(4));
        Assert.That(wall.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5) + time.Elapsed / 100), "no real sleeping");
        Assert.That(log.Lines, Has.Some.Contains("'data/level2.pak': layer 1"));
        Assert.That(Leftovers(StateDir(s)), Is.Empty);
    }

    [Test]
    public void Apply_LockOutlastsBudget_ThrowsFileLockedNamingFileAndOldVersionIntact()
    {
        using var s = Scenario();
        var before = PatchScenario.Listing(s.InstallDir);
        var fs = new LockingFileOps();
        // game.exe is placed after the assets and data files: those are replaced first and must be rolled back.
        var target = Path.Join(s.InstallDir, "game.exe");
        fs.LockForever(target, 32);
        var time = new FakeTimeProvider();
        var log = new ListLogger();
        var budget = TimeSpan.FromSeconds(20);

        var ex = Assert.Throws<PatcherException>(() => Apply(s, fs, Options(s, time, log, budget)));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.FileLocked));
        Assert.That(ex.Path, Is.EqualTo("game.exe"));
        Assert.That(ex.NativeError, Is.EqualTo(32));
        Assert.That(ex.Message, Does.Contain("game.exe").And.Contain("sharing violation").And.Contain("rolled back"));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before), "old version byte for byte, user files included");
        Assert.That(log.Lines, Has.Some.Contains("'assets/a0000.bin': layer"), "an earlier file had been replaced, so the rollback was exercised");
        Assert.That(time.Elapsed, Is.GreaterThanOrEqualTo(budget).And.LessThan(budget * 1.5), "gave up once the budget was spent");
        Assert.That(Leftovers(StateDir(s)), Is.Empty);
        Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Null);
    }

    [Test]
    public void Apply_RunningExecutable_ReplacedByRenamingAsideAndCleanedUpByNextUpdate()
    {
        using var s = Scenario();
        var fs = new LockingFileOps();
        var exe = Path.Join(s.InstallDir, "game.exe");
        fs.RunAsExecutable(exe);
        var log = new ListLogger();

        Apply(s, fs, Options(s, new FakeTimeProvider(), log));

        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(log.Lines, Has.Some.Contains("'game.exe': layer 3"));
        // The old image still runs under its aside name, so its backup area cannot go yet.
        var aside = fs.LockedPaths.Single();
        Assert.That(aside, Does.StartWith(StateDir(s)).And.EndWith(".aside"));
        Assert.That(File.ReadAllText(aside), Is.EqualTo("engine v1"));
        Assert.That(log.Lines, Has.Some.Contains("removed by the next update"));

        // The game exits; the next update removes the stale backup area.
        fs.Release(aside);
        var v3 = s.Dir("v3");
        PatchScenario.CopyTree(s.NewTree, v3);
        PatchScenario.Write(v3, "game.exe", "engine v3", executable: true);
        var patch3 = Path.Join(s.Root, "patch3");
        s.BuildPatch("3.0.0", "2.0.0", patch3, s.NewTree, v3);
        TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, patch3, Options(s, new FakeTimeProvider(), log), null, CancellationToken.None);
        Assert.That(File.ReadAllText(exe), Is.EqualTo("engine v3"));
        Assert.That(Leftovers(StateDir(s)), Is.Empty);
    }

    [Test]
    public void Apply_RunningExecutableRemovedByNewVersion_MovedAsideNotDeleted()
    {
        using var s = Scenario();
        var fs = new LockingFileOps();
        // data/old-only.txt is not in v2: removing it is a rename into the backup area, which a running image allows.
        var removed = Path.Join(s.InstallDir, "data/old-only.txt");
        fs.RunAsExecutable(removed);

        Apply(s, fs, Options(s, new FakeTimeProvider(), new ListLogger()));

        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(fs.Refusals(removed), Is.Zero, "never overwritten or deleted in place");
    }

    [Test]
    public void Apply_UserFileWhereNewVersionAddsFile_KeptInPreserved()
    {
        using var s = Scenario();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");

        var result = Apply(s, FileOps.Instance, Options(s, new FakeTimeProvider(), new ListLogger()));

        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        var kept = Path.Join(StateDir(s), "preserved-" + result.TransactionId, "data", "level3.pak");
        Assert.That(File.ReadAllText(kept), Is.EqualTo("my own level"));
    }

    [Test]
    public void Apply_UserFileCreatedAtNewPathAfterPlanning_MovedAsideNotRolledBack()
    {
        // The layered commit plans from the walk taken before the blobs are received (the first Staging report comes
        // after that walk); a file another program creates meanwhile where the new version adds one must still be
        // seen, and kept.
        using var s = Scenario();
        var created = false;
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != PatchPhase.Staging || created) return;
            created = true;
            PatchScenario.Write(s.InstallDir, "data/level3.pak", "made while the patch was received");
        });

        var result = TransactionEngine.Apply(new EngineSettings(FileOps.Instance), s.InstallDir, s.PatchDir,
            Options(s, new FakeTimeProvider(), new ListLogger()), progress, CancellationToken.None);

        Assert.That(created, Is.True);
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        var kept = Path.Join(StateDir(s), "preserved-" + result.TransactionId, "data", "level3.pak");
        Assert.That(File.ReadAllText(kept), Is.EqualTo("made while the patch was received"));
    }

    [Test]
    public void Apply_DirectoryRemovedAfterPlanning_MadeAgainAndApplied()
    {
        // Every file in assets/ changes; the player deletes the whole folder after the walk. The plan's walk says the
        // directory is there, so without a fresh look no step would make it and placing its files would fail.
        using var s = new PatchScenario("layered").WithSmallGame(extraFiles: 4, changeEvery: 1).Install();
        s.BuildPatch();
        var removed = false;
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != PatchPhase.Staging || removed) return;
            removed = true;
            Directory.Delete(Path.Join(s.InstallDir, "assets"), recursive: true);
        });

        var result = TransactionEngine.Apply(new EngineSettings(FileOps.Instance), s.InstallDir, s.PatchDir,
            Options(s, new FakeTimeProvider(), new ListLogger()), progress, CancellationToken.None);

        Assert.That(removed, Is.True);
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_OwnedDirectoryReplacedBySymlinkThenLockOutlastsBudget_NothingReachedThroughTheLinkAndRolledBack()
    {
        // A player moved data/ to another disk and left a symlink. Planning must not look through it (the walk does
        // not): a file seen through it would be backed up and "restored" into the new real directory on rollback.
        if (OperatingSystem.IsWindows()) Assert.Ignore("symlinks need privileges on Windows");
        using var s = new PatchScenario("layered").WithSmallGame().InstallThroughPatcher();
        var moved = Path.Join(s.Root, "moved-data");
        Directory.Move(Path.Join(s.InstallDir, "data"), moved);
        Directory.CreateSymbolicLink(Path.Join(s.InstallDir, "data"), moved);
        var full = Path.Join(s.Root, "full-v2");
        s.BuildFull(s.NewTree, full, "2.0.0");
        var before = PatchScenario.Listing(s.InstallDir);
        var movedBefore = PatchScenario.Listing(moved);
        var fs = new LockingFileOps();
        fs.LockForever(Path.Join(s.InstallDir, "game.exe"), 32); // placed after the data/ files, so they are rolled back
        var time = new FakeTimeProvider();

        var ex = Assert.Throws<PatcherException>(() => TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, full,
            Options(s, time, new ListLogger(), TimeSpan.FromSeconds(20)), null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.FileLocked), ex.Message);
        Assert.That(ex.Message, Does.Contain("rolled back"));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before), "the symlink and everything else as it was");
        Assert.That(PatchScenario.Listing(moved), Is.EqualTo(movedBefore), "nothing behind the symlink touched");
        Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Null);
    }

    [Test]
    public void Recover_CrashAfterPlacingWhereAMoveAsideFoundNothing_FinishesWithoutMovingTheNewFile()
    {
        // The player's file where the new version adds one is planned to move aside, but something deletes it before
        // that step (a mod manager); the step moves nothing, and the new file is placed at the path. A crash then,
        // before the batch of rows is journaled, must not make recovery run the move aside again: it would move the
        // new file away.
        using var s = Scenario();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var target = Path.Join(s.InstallDir, "data", "level3.pak");
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Committing && File.Exists(target)) File.Delete(target);
        });
        var fs = new CrashAfterRenameFileOps(FileOps.Instance, target);

        Assert.Throws<SimulatedCrash>(() => TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir,
            Options(s, new FakeTimeProvider(), new ListLogger()), progress, CancellationToken.None));
        Assert.That(Patcher.Status(s.InstallDir).PendingTransactionId, Is.Not.Null, "the crash left the transaction pending");

        var recovered = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledForward));
        Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    private sealed class SimulatedCrash : Exception;

    /// <summary>Stops the apply right after a rename onto one path, as a kill would (no fsync, no journal row after it).</summary>
    private sealed class CrashAfterRenameFileOps(IFileOps inner, string crashAfterRenameTo) : FileOpsDecorator(inner)
    {
        public override void Rename(string from, string to)
        {
            Inner.Rename(from, to);
            if (to == crashAfterRenameTo) throw new SimulatedCrash();
        }
    }

    /// <summary>
    /// A power cut can keep both names of a rename (the new one durable, the old one's removal not), on file systems that do
    /// not journal a rename as one unit; the power-loss simulation found recovery then left an old file in the new version
    /// or refused to finish. Here the state is made on the real disk: the rename is replaced by a hard link, then the
    /// process "dies". Recovery must finish the step (forward) or undo it (rollback, forced through the journal).
    /// </summary>
    [TestCase("move aside", false)]
    [TestCase("move aside", true)]
    [TestCase("place", false)]
    [TestCase("place", true)]
    public void Recover_RenameCutWithBothNamesKept_FinishesOrUndoesTheStep(string step, bool rollBack)
    {
        using var s = Scenario();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var before = PatchScenario.Listing(s.InstallDir);
        var path = Path.Join(s.InstallDir, "data", "level3.pak");
        // The player's file is moved aside from the path the new version adds a file at, then the new file is placed there.
        var fs = new HalfRenameFileOps(FileOps.Instance, step == "move aside" ? (from, _) => from == path : (_, to) => to == path);

        Assert.Throws<SimulatedCrash>(() => Apply(s, fs, Options(s, new FakeTimeProvider(), new ListLogger())));
        Assert.That(fs.Cut, Is.True);
        if (rollBack) ForceRollback(s);

        var recovered = Patcher.Recover(s.InstallDir, s.Options);

        if (rollBack)
        {
            Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledBack));
            Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
        }
        else
        {
            Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledForward));
            Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
            var kept = Directory.EnumerateFiles(StateDir(s), "level3.pak", SearchOption.AllDirectories).ToList();
            Assert.That(kept.Select(File.ReadAllText), Is.EqualTo(new[] { "my own level" }), "the player's file is kept in preserved-<tx>");
        }

        Assert.That(Leftovers(StateDir(s)), Is.Empty);
    }

    /// <summary>
    /// The player hard-linked docs/manual.txt (which the new version drops) at docs/guide.txt, where the new version adds a
    /// file with the same content: staging links the new guide.txt from manual.txt, so the staged file and the player's
    /// file are one inode without any rename having been cut. From review: the rollback took that for a cut placement
    /// and deleted the player's file; recovery after a crash right after the placement deleted the new file and failed.
    /// </summary>
    [TestCase("commit fails before the player's file is moved aside")]
    [TestCase("crash right after the new file is placed")]
    public void Recover_PlayersHardLinkWhereTheNewVersionAddsTheSameContent_NotTakenForACutRename(string when)
    {
        using var s = Scenario();
        var guide = Path.Join(s.InstallDir, "docs", "guide.txt");
        Assert.That(FileOps.Instance.TryHardLink(Path.Join(s.InstallDir, "docs", "manual.txt"), guide), Is.True);
        var before = PatchScenario.Listing(s.InstallDir);
        var options = Options(s, new FakeTimeProvider(), new ListLogger());

        if (when.StartsWith("commit fails", StringComparison.Ordinal))
        {
            var oldOnly = Path.Join(s.InstallDir, "data", "old-only.txt");
            var fs = new FailRenameFileOps(FileOps.Instance, (from, _) => from == oldOnly);
            Assert.Throws<PatcherException>(() => Apply(s, fs, options));

            Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before), "rolled back: the player's link is still there");
        }
        else
        {
            Assert.Throws<SimulatedCrash>(() => Apply(s, new CrashAfterRenameFileOps(FileOps.Instance, guide), options));

            var recovered = Patcher.Recover(s.InstallDir, s.Options);

            Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledForward));
            Assert.That(PatchScenario.Listing(s.InstallDir, IsUserPath), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
            Assert.That(Directory.EnumerateFiles(StateDir(s), "guide.txt", SearchOption.AllDirectories).Select(File.ReadAllText), Is.EqualTo(new[] { "manual" }),
                "the player's guide.txt is kept in preserved-<tx>");
        }

        Assert.That(Leftovers(StateDir(s)), Is.Empty);
    }

    /// <summary>Fails one rename as an I/O error would.</summary>
    private sealed class FailRenameFileOps(IFileOps inner, Func<string, string, bool> failThis) : FileOpsDecorator(inner)
    {
        public override void Rename(string from, string to)
        {
            if (failThis(from, to)) throw new PatcherException(PatchErrorCode.IOFailure, "injected I/O error", from);
            Inner.Rename(from, to);
        }
    }

    /// <summary>Marks the last transaction rolling-back, as if the process had died after deciding to roll back.</summary>
    private static void ForceRollback(PatchScenario s)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Join(StateDir(s), "journal.db")};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "UPDATE tx SET state = 'rolling-back' WHERE seq = (SELECT MAX(seq) FROM tx)";
        cmd.ExecuteNonQuery();
    }

    /// <summary>Makes one rename leave both names (a hard link instead), then stops the apply as a kill would.</summary>
    private sealed class HalfRenameFileOps(IFileOps inner, Func<string, string, bool> cutThis) : FileOpsDecorator(inner)
    {
        public bool Cut { get; private set; }

        public override void Rename(string from, string to)
        {
            if (Cut || !cutThis(from, to))
            {
                Inner.Rename(from, to);
                return;
            }

            Cut = true;
            if (!Inner.TryHardLink(from, to)) throw new InvalidOperationException("this test needs hard links");
            throw new SimulatedCrash();
        }
    }

    [Test]
    public void Apply_UserFileCollisionThenLockOutlastsBudget_UserFileBackInPlace()
    {
        using var s = Scenario();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var before = PatchScenario.Listing(s.InstallDir);
        var fs = new LockingFileOps();
        fs.LockForever(Path.Join(s.InstallDir, "game.exe"), 33);

        var ex = Assert.Throws<PatcherException>(() => Apply(s, fs, Options(s, new FakeTimeProvider(), new ListLogger(), TimeSpan.FromSeconds(2))));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.FileLocked));
        Assert.That(ex.NativeError, Is.EqualTo(33));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }

    /// <summary>
    /// A rollback interrupted after its file steps (crash, or its last journal write failing) is run again by
    /// recovery. The second pass must recognise the user's file it already put back at a path the new version
    /// had used, and keep it: regression test for the review finding "a second layered rollback deletes the
    /// user's file".
    /// </summary>
    [Test]
    public void Recover_RollbackRunTwice_UserFileDisplacedFromNewPathSurvives()
    {
        using var s = Scenario();
        PatchScenario.Write(s.InstallDir, "data/level3.pak", "my own level");
        var before = PatchScenario.Listing(s.InstallDir);
        var fs = new LockingFileOps();
        fs.LockForever(Path.Join(s.InstallDir, "game.exe"), 33);
        Assert.Throws<PatcherException>(() => Apply(s, fs, Options(s, new FakeTimeProvider(), new ListLogger(), TimeSpan.FromSeconds(2))));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));

        // Re-arm the finished rollback as if the process had died before recording rolled-back.
        string txId;
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Join(StateDir(s), "journal.db")};Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT id FROM tx ORDER BY seq DESC LIMIT 1";
            txId = (string)cmd.ExecuteScalar()!;
            cmd.CommandText = $"UPDATE tx SET state = 'rolling-back' WHERE id = '{txId}'";
            cmd.ExecuteNonQuery();
        }

        File.WriteAllText(Path.Join(StateDir(s), "pending"), txId);

        var recovered = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That(recovered.Outcome, Is.EqualTo(RecoveryOutcome.RolledBack));
        Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "data/level3.pak")), Is.EqualTo("my own level"));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }

    [Test]
    public void Apply_ParentNotWritable_StateInsideInstallExcludedFromScansAndRecovery()
    {
        using var s = Scenario();
        var fs = new LockingFileOps();
        fs.DenyCreateDirectory(StateDir(s));
        var inside = Path.Join(s.InstallDir, ".patcher");

        var result = TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, s.Options with { Logger = new ListLogger() }, null, CancellationToken.None);

        Assert.That(result.Strategy, Is.EqualTo(CommitStrategy.Layered), "auto falls back to layered");
        Assert.That(Directory.Exists(StateDir(s)), Is.False);
        Assert.That(File.Exists(Path.Join(inside, "journal.db")), Is.True);
        Assert.That(PatchScenario.Listing(s.InstallDir, p => IsUserPath(p) || p == ".patcher" || p.StartsWith(".patcher/", StringComparison.Ordinal)),
            Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(Leftovers(inside), Is.Empty);
        Assert.That(Patcher.Status(s.InstallDir).InstalledVersion, Is.EqualTo("2.0.0"), "status finds the state inside");
        Assert.That(Patcher.Verify(s.InstallDir).IsIntact, Is.True);
        Assert.That(Patcher.Recover(s.InstallDir).Outcome, Is.EqualTo(RecoveryOutcome.NothingPending));

        // A next update must not take the state directory for the user's files, nor touch it.
        var v3 = s.Dir("v3");
        PatchScenario.CopyTree(s.NewTree, v3);
        PatchScenario.Write(v3, "data/level4.pak", "four");
        var patch3 = Path.Join(s.Root, "patch3");
        s.BuildPatch("3.0.0", "2.0.0", patch3, s.NewTree, v3);
        TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, patch3, s.Options, null, CancellationToken.None);
        Assert.That(PatchScenario.Listing(s.InstallDir, p => IsUserPath(p) || p == ".patcher" || p.StartsWith(".patcher/", StringComparison.Ordinal)),
            Is.EqualTo(PatchScenario.Listing(v3)));
        Assert.That(Patcher.Status(s.InstallDir).InstalledVersion, Is.EqualTo("3.0.0"));
    }

    [Test]
    public void Apply_ParentNotWritableAndSwapRequested_RefusedWithAccessDenied()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = Scenario();
        var before = PatchScenario.Listing(s.InstallDir);
        var fs = new LockingFileOps();
        fs.DenyCreateDirectory(StateDir(s));

        var ex = Assert.Throws<PatcherException>(() => TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir,
            s.Options with { Strategy = CommitStrategy.Swap }, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.AccessDenied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }
}
