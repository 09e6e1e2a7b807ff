using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Patching.IO;
using Patching.Journal;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.PowerLoss;

/// <summary>
/// Simulated power loss at every crash point of an apply: the install and state directory live in a
/// <see cref="SimulatedFileSystem"/> that, at the cut, keeps, drops or garbles everything not yet made durable
/// (docs/recovery.md, "The power-loss model"). Recovery then runs on what a reboot would find; the install must be
/// exactly the old or the new version, the journal must agree, the user's files must be intact, nothing may be
/// left in the state directory, and a later apply must succeed.
/// The journal (SQLite, WAL + synchronous=FULL) lives in a real directory and is taken as durable at each commit.
/// </summary>
[Category("PowerLoss")]
public sealed class PowerLossTests
{
    private const int OutcomesPerPoint = 10;
    private const string Parent = "/sim/parent";
    private const string Install = Parent + "/game";
    private const string StateDir = Parent + "/.game.patcher";

    private static readonly string[] UserFiles = ["saves/slot1.sav", "data/user-mod.txt", "legacy/my-notes.txt"];

    // saves/slot2.sav is the save the game writes while an update is staged (one test); absent elsewhere.
    private static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves" or "legacy" or "saves/slot2.sav";

    [TestCase(true, CommitStrategy.Swap, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(exchange)")]
    [TestCase(false, CommitStrategy.Swap, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(two renames)")]
    [TestCase(true, CommitStrategy.Layered, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(layered)")]
    [TestCase(true, CommitStrategy.Swap, 2, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(format 2 exchange)")]
    [TestCase(true, CommitStrategy.Layered, 2, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(format 2 layered)")]
    public void Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(bool exchange, CommitStrategy strategy, int format = 1)
    {
        RequireLinux();
        using var w = new World(exchange, strategy, format: format);
        var tally = new Tally();
        var n = w.ForEveryCut(w.Fs, (cut, sim, journal) =>
        {
            for (var o = 0; o < OutcomesPerPoint; o++)
            {
                var seed = cut.Seed(o);
                var choices = new List<string>();
                var rebooted = sim.AfterPowerLoss(new Random(seed), choices);
                tally.Add(w.RecoverAndCheck(rebooted, journal, $"{cut} seed {seed}", choices, tally.Failures));
            }
        }, tally.Failures);

        var name = (format == 2 ? "format 2 " : "") + (strategy == CommitStrategy.Layered ? "layered" : exchange ? "exchange" : "two renames");
        Report($"power loss ({name}): {n} mutating calls x 2 moments = {2 * n} crash points x {OutcomesPerPoint} outcomes", tally, $"powerloss-{name.Replace(' ', '-')}");
        Assert.That(tally.Total, Is.EqualTo(2 * n * OutcomesPerPoint));
        Assert.That(tally.Old, Is.GreaterThan(0), "some cuts must land before the commit");
        Assert.That(tally.New, Is.GreaterThan(0), "some cuts must land after the commit");
    }

    /// <summary>
    /// The layered commit journals its rows 64 at a time and fsyncs the placements' directories just before: a game with
    /// more than 64 changed files crosses that boundary (the small game does not). Cut before every directory fsync, where
    /// a placement can still be undone by the power cut while rows would say it is done.
    /// </summary>
    [Test]
    public void Apply_LayeredCommitOfMoreThanOneRowBatch_PowerLossBeforeEachDirectoryFsync_RecoveryYieldsOldOrNewExactly()
    {
        RequireLinux();
        using var w = new World(exchange: true, CommitStrategy.Layered, extraFiles: 70, changeEvery: 1);
        var tally = new Tally();
        var cuts = 0;
        w.ForEveryCut(w.Fs, (cut, sim, journal) =>
        {
            cuts++;
            for (var o = 0; o < OutcomesPerPoint; o++)
            {
                var seed = cut.Seed(o);
                var choices = new List<string>();
                tally.Add(w.RecoverAndCheck(sim.AfterPowerLoss(new Random(seed), choices), journal, $"{cut} seed {seed}", choices, tally.Failures, applyAfterwards: false));
            }
        }, tally.Failures, moments: [CrashMoment.Before], onlyCalls: call => call.StartsWith("fsync-dir ", StringComparison.Ordinal));

        Report($"power loss (layered, {cuts} cuts before directory fsyncs, more than one batch of rows)", tally, "powerloss-layered-batches");
        Assert.That(cuts, Is.GreaterThan(10));
        Assert.That(tally.New, Is.GreaterThan(0));
    }

    /// <summary>
    /// The player keeps a file where the new version adds one. The layered commit moves it aside and places the new file at
    /// its path (the move aside must be durable before the placement is); the swap leaves it in the old tree. After the
    /// commit either moves it into a new preserved folder. Before the fix, a cut that kept that last rename but not the
    /// preserved folder's own entry lost the player's file (9 of 2,000 layered outcomes).
    /// </summary>
    [TestCase(CommitStrategy.Layered, false, TestName = "Apply_PlayersFileWhereTheNewVersionAddsOne_PowerLossAtEveryPoint_PlayersFileNeverLost(Layered)")]
    [TestCase(CommitStrategy.Swap, false, TestName = "Apply_PlayersFileWhereTheNewVersionAddsOne_PowerLossAtEveryPoint_PlayersFileNeverLost(Swap)")]
    [TestCase(CommitStrategy.Layered, true, TestName = "Apply_PlayersFileInAnOldDirectoryThatBecomesAFile_PowerLossAtEveryPoint_PlayersFileNeverLost(Layered)")]
    [TestCase(CommitStrategy.Swap, true, TestName = "Apply_PlayersFileInAnOldDirectoryThatBecomesAFile_PowerLossAtEveryPoint_PlayersFileNeverLost(Swap)")]
    public void Apply_PlayersFileInTheWay_PowerLossAtEveryPoint_PlayersFileNeverLost(CommitStrategy strategy, bool directoryBecomesFile)
    {
        RequireLinux();
        // Either the new version adds a file where the player keeps one, or an old directory holding an old file and the
        // player's file becomes a file of the new version (the layered commit moves the old file aside, then the directory).
        using var w = directoryBecomesFile
            ? new World(exchange: true, strategy, inTheWay: "mods/my-mod.dat", more: s =>
            {
                PatchScenario.Write(s.OldTree, "mods/readme.txt", "mods go here");
                PatchScenario.Write(s.NewTree, "mods", "mods are now configured in this file");
            })
            : new World(exchange: true, strategy, inTheWay: "data/level3.pak");
        var tally = new Tally();
        var n = w.ForEveryCut(w.Fs, (cut, sim, journal) =>
        {
            for (var o = 0; o < OutcomesPerPoint; o++)
            {
                var seed = cut.Seed(o);
                var choices = new List<string>();
                tally.Add(w.RecoverAndCheck(sim.AfterPowerLoss(new Random(seed), choices), journal, $"{cut} seed {seed}", choices, tally.Failures));
            }
        }, tally.Failures);

        var what = directoryBecomesFile ? "a player's file in an old directory that becomes a file" : "a player's file where the new version adds one";
        Report($"power loss ({strategy}, {what}): {n} mutating calls x 2 moments x {OutcomesPerPoint} outcomes", tally,
            $"powerloss-{strategy.ToString().ToLowerInvariant()}-{(directoryBecomesFile ? "dir-becomes-file" : "in-the-way")}");
        Assert.That(tally.Old, Is.GreaterThan(0));
        Assert.That(tally.New, Is.GreaterThan(0));
    }

    /// <summary>
    /// Reproducibility: the k-th crash point must be the same call on every run, or a seed would not reproduce a
    /// failure. The transaction id (time and random bytes) is the only difference allowed.
    /// </summary>
    [Test]
    public void Apply_InTheSimulation_MakesTheSameCallsInTheSameOrderEveryRun()
    {
        RequireLinux();
        using var w = new World(exchange: true);
        var logs = Enumerable.Range(0, 3).Select(i =>
        {
            var sim = w.Fresh();
            var journal = w.Journal("same-" + i);
            var tx = SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, w.S.PatchDir, w.Options, null, CancellationToken.None)).TransactionId!;
            return sim.OperationLog.Select(l => l.Replace(tx, "<tx>", StringComparison.Ordinal)).ToList();
        }).ToList();

        Assert.That(logs[1], Is.EqualTo(logs[0]));
        Assert.That(logs[2], Is.EqualTo(logs[0]));
    }

    /// <summary>
    /// A launcher that does not call Recover first: the next Apply of the same patch after the reboot resumes an
    /// interrupted staging (trusting the journaled per-file rows) or recovers, and must end on the new version.
    /// </summary>
    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    [TestCase(CommitStrategy.Swap, 2, TestName = "Apply_PowerLossAtEveryPoint_NextApplyEndsOnNewVersionExactly(format 2 Swap)")]
    public void Apply_PowerLossAtEveryPoint_NextApplyEndsOnNewVersionExactly(CommitStrategy strategy, int format = 1)
    {
        RequireLinux();
        using var w = new World(exchange: true, strategy, format: format);
        var tally = new Tally();
        var resumed = 0;
        var log = new Commit.ListLogger();
        var n = w.ForEveryCut(w.Fs, (cut, sim, journal) =>
        {
            for (var o = 0; o < OutcomesPerPoint; o++)
            {
                var seed = cut.Seed(o);
                var choices = new List<string>();
                var rebooted = sim.AfterPowerLoss(new Random(seed), choices);
                var label = $"{cut} seed {seed}";
                var copy = w.CopyJournal(journal, "reapply");
                try
                {
                    var result = SimulatedFsRunner.Run(() => TransactionEngine.Apply(w.Engine(rebooted, copy), Install, w.S.PatchDir, w.Options with { Logger = log }, null, CancellationToken.None));
                    if (result.Resumed) resumed++;
                    tally.Add(w.Check(rebooted, copy, label, choices, tally.Failures, expectNew: true));
                }
                catch (PatcherException ex) when (ex.Code == PatchErrorCode.NotNewer)
                {
                    // The cut came after the new version was recorded: the launcher is told it is up to date.
                    tally.Add(w.Check(rebooted, copy, label, choices, tally.Failures, expectNew: true));
                }
                catch (Exception ex)
                {
                    tally.Failures.Add($"{label}: apply after reboot threw {ex.GetType().Name}: {ex.Message} [choices: {string.Join("; ", choices)}]");
                }

                Directory.Delete(copy, recursive: true);
            }
        }, tally.Failures);

        var contents = log.Ids.Count(id => id == PatcherLogEvents.ContentResumed.Id);
        var name = (format == 2 ? "format 2 " : "") + Name(strategy);
        Report($"power loss then apply again ({name}): {2 * n} crash points x {OutcomesPerPoint} outcomes ({resumed} resumed staging, {contents} continued a rebuilt content's recorded prefix)",
            tally, $"powerloss-reapply-{name.Replace(' ', '-')}");
        Assert.That(tally.New, Is.EqualTo(tally.Total));
        Assert.That(resumed, Is.GreaterThan(0), "some cuts during staging must be resumed, not restarted");
        if (format == 2) Assert.That(contents, Is.GreaterThan(0), "some cuts inside a rebuilt content must continue its recorded prefix");
    }

    /// <summary>
    /// Power lost again while recovery runs: for every cut of the apply (one outcome each), recovery is cut at each
    /// of its own mutating calls, and the second recovery must still end on the old or the new version exactly.
    /// </summary>
    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Recover_PowerLossDuringRecovery_SecondRecoveryYieldsOldOrNewExactly(CommitStrategy strategy)
    {
        RequireLinux();
        using var w = new World(exchange: true, strategy);
        var tally = new Tally();
        var recoveryCuts = 0;
        var n = w.ForEveryCut(w.Fs, (cut, sim, journal) =>
        {
            var first = sim.AfterPowerLoss(new Random(cut.Seed(0)));

            // How many mutating calls does recovery make from this state?
            var probe = first.Clone();
            var probeJournal = w.CopyJournal(journal, "probe");
            SimulatedFsRunner.Run(() => TransactionEngine.Recover(new EngineSettings(probe, probeJournal), Install, w.Options));
            Directory.Delete(probeJournal, recursive: true);

            for (var j = 1; j <= probe.Mutations; j++)
            {
                var second = first.Clone();
                second.CrashAt(j, CrashMoment.Before);
                var midJournal = w.CopyJournal(journal, "mid");
                var label = $"{cut} seed {cut.Seed(0)}, recovery cut before its call {j}";
                try
                {
                    SimulatedFsRunner.RunUntilCrash(second, () => TransactionEngine.Recover(new EngineSettings(second, midJournal), Install, w.Options));
                }
                catch (InvalidOperationException ex)
                {
                    tally.Failures.Add($"{label}: {ex.Message}: {ex.InnerException?.Message}");
                    continue;
                }

                var seed = cut.Seed(j);
                var choices = new List<string>();
                tally.Add(w.RecoverAndCheck(second.AfterPowerLoss(new Random(seed), choices), midJournal, $"{label} seed {seed}", choices, tally.Failures));
                Directory.Delete(midJournal, recursive: true);
                recoveryCuts++;
            }
        }, tally.Failures, moments: [CrashMoment.Before]);

        Report($"power loss during recovery ({Name(strategy)}): {n} apply cuts, {recoveryCuts} recovery cuts", tally, $"powerloss-recovery-{Name(strategy)}");
        Assert.That(recoveryCuts, Is.GreaterThan(n), "recovery has crash points of its own for most states");
    }

    /// <summary>
    /// The second update of an install Patcher already knows, keeping the old version for rollback: the journal
    /// must record 1.0.0 or 2.0.0 to match the tree, and previous/ must hold the other version exactly.
    /// </summary>
    [Test]
    public void Apply_KeepingPreviousVersion_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewAndPreviousKept()
    {
        RequireLinux();
        using var w = new World(exchange: true) { InstalledVersions = ("1.0.0", "2.0.0") };
        var options = w.Options with { KeepPreviousVersion = true };
        var (template, templateJournal) = w.InstalledThroughPatcher(thenApplyKeepingPrevious: false);
        var tally = new Tally();
        var n = 0;
        w.ForEveryCutOf(
            () => (template.Clone(), w.CopyJournal(templateJournal, "cut")),
            (sim, journal) => SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, w.S.PatchDir, options, null, CancellationToken.None)),
            dry =>
            {
                Assert.That(dry.Listing(Install, IsUserPath), Is.EqualTo(w.NewListing));
                Assert.That(dry.Listing(StateDir + "/previous", IsUserPath), Is.EqualTo(w.OldListing));
                n = dry.OperationLog.Count;
            },
            (cut, sim, journal) =>
            {
                for (var o = 0; o < OutcomesPerPoint; o++)
                {
                    var seed = cut.Seed(o);
                    var choices = new List<string>();
                    var rebooted = sim.AfterPowerLoss(new Random(seed), choices);
                    w.ExpectPrevious = false;
                    var ended = w.RecoverAndCheck(rebooted, journal, $"{cut} seed {seed}", choices, tally.Failures, applyAfterwards: false);
                    // Only a completed update keeps a previous version; check it on the rebooted, recovered machine.
                    if (ended == Ended.New && !rebooted.Listing(StateDir + "/previous", IsUserPath).SequenceEqual(w.OldListing))
                        tally.Failures.Add($"{cut} seed {seed}: new version installed but previous/ is not the old version exactly");
                    tally.Add(ended);
                }
            },
            tally.Failures);

        Report($"power loss keeping the previous version (exchange): {n} mutating calls x 2 moments x {OutcomesPerPoint} outcomes", tally, "powerloss-keep-previous");
        Assert.That(tally.Total, Is.EqualTo(2 * n * OutcomesPerPoint));
    }

    /// <summary>
    /// Rollback to the kept previous version, cut at every point: recovery must end on 2.0.0 (rollback undone) or
    /// 1.0.0 (rollback finished), the journal agreeing, and previous/ holding the other version exactly.
    /// </summary>
    [Test]
    public void Rollback_PowerLossAtEveryPoint_RecoveryYieldsOneVersionAndKeepsTheOther()
    {
        RequireLinux();
        using var w = new World(exchange: true) { InstalledVersions = ("1.0.0", "2.0.0"), ExpectPrevious = true };
        var (template, templateJournal) = w.InstalledThroughPatcher(thenApplyKeepingPrevious: true);
        var tally = new Tally();
        var n = 0;
        w.ForEveryCutOf(
            () => (template.Clone(), w.CopyJournal(templateJournal, "cut")),
            (sim, journal) => SimulatedFsRunner.Run(() => TransactionEngine.Rollback(sim, new EngineSettings(sim, journal).Layout(Install, w.Options), w.Options)),
            dry =>
            {
                Assert.That(dry.Listing(Install, IsUserPath), Is.EqualTo(w.OldListing), "a rollback in the simulation ends on the old version");
                Assert.That(dry.Listing(StateDir + "/previous", IsUserPath), Is.EqualTo(w.NewListing), "and keeps the new one");
                n = dry.OperationLog.Count;
            },
            (cut, sim, journal) =>
            {
                for (var o = 0; o < OutcomesPerPoint; o++)
                {
                    var seed = cut.Seed(o);
                    var choices = new List<string>();
                    tally.Add(w.RecoverAndCheck(sim.AfterPowerLoss(new Random(seed), choices), journal, $"{cut} seed {seed}", choices, tally.Failures, applyAfterwards: false));
                }
            },
            tally.Failures);

        Report($"power loss during rollback (exchange): {n} mutating calls x 2 moments x {OutcomesPerPoint} outcomes", tally, "powerloss-rollback");
        Assert.That(tally.Total, Is.EqualTo(2 * n * OutcomesPerPoint));
        Assert.That(tally.Old, Is.GreaterThan(0), "some cuts land after the rollback's switch");
        Assert.That(tally.New, Is.GreaterThan(0), "some cuts land before it");
    }

    /// <summary>
    /// The game saves while the update is staged: slot1.sav is replaced by a new file and slot2.sav appears, after
    /// their hard links went into the staged tree. The post-commit sweep must carry both over (renames out of the
    /// old tree into the new one); at every cut, the install must hold the newer saves, whichever version it ends on.
    /// </summary>
    [Test]
    public void Apply_UserSavesWhileStaged_PowerLossAtEveryPoint_NewSavesNeverLost()
    {
        RequireLinux();
        using var w = new World(exchange: true);
        w.UserContent["saves/slot1.sav"] = "saved during the update";
        w.UserContent["saves/slot2.sav"] = "a new slot";
        var tally = new Tally();
        var n = 0;
        var saved = new HashSet<SimulatedFileSystem>(ReferenceEqualityComparer.Instance);

        void ApplyWhileGameSaves(SimulatedFileSystem sim, string journal)
        {
            var progress = new SyncProgress(p =>
            {
                if (p.Phase != PatchPhase.Committing || !saved.Add(sim)) return;
                // The game replaces its save (a new inode, as a safe save does) and writes a new one, durably.
                sim.WriteDurably(Install + "/saves/slot1.sav", Encoding.UTF8.GetBytes("saved during the update"));
                sim.WriteDurably(Install + "/saves/slot2.sav", Encoding.UTF8.GetBytes("a new slot"));
            });
            SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, w.S.PatchDir, w.Options, progress, CancellationToken.None));
        }

        w.ForEveryCutOf(
            () => (w.Fresh(), w.Journal("cut")),
            ApplyWhileGameSaves,
            dry =>
            {
                Assert.That(dry.Listing(Install, IsUserPath), Is.EqualTo(w.NewListing));
                Assert.That(dry.OperationLog, Has.Some.Contains("saves/slot2.sav"), "the sweep moved the new save");
                n = dry.OperationLog.Count;
            },
            (cut, sim, journal) =>
            {
                for (var o = 0; o < OutcomesPerPoint; o++)
                {
                    var seed = cut.Seed(o);
                    var choices = new List<string>();
                    var rebooted = sim.AfterPowerLoss(new Random(seed), choices);
                    // A cut before the game saved: the old saves are the right answer.
                    if (!saved.Contains(sim))
                    {
                        w.UserContent["saves/slot1.sav"] = "user saves/slot1.sav";
                        w.UserContent.Remove("saves/slot2.sav");
                    }
                    else
                    {
                        w.UserContent["saves/slot1.sav"] = "saved during the update";
                        w.UserContent["saves/slot2.sav"] = "a new slot";
                    }

                    tally.Add(w.RecoverAndCheck(rebooted, journal, $"{cut} seed {seed}", choices, tally.Failures, applyAfterwards: false));
                }
            },
            tally.Failures);

        Report($"power loss while the game saves during the update (exchange): {n} mutating calls x 2 moments x {OutcomesPerPoint} outcomes", tally, "powerloss-user-saves");
        Assert.That(tally.Total, Is.EqualTo(2 * n * OutcomesPerPoint));
    }

    /// <summary>
    /// The negative control: the same experiment against an engine whose fsyncs are silently skipped must find
    /// torn installs. If it did not, the simulation would be too kind to prove the real ordering right.
    /// </summary>
    [TestCase(true, false, TestName = "Apply_FileFsyncsSkipped_SimulationFindsTornInstalls")]
    [TestCase(false, true, TestName = "Apply_DirectoryFsyncsSkipped_SimulationFindsTornInstalls")]
    public void Apply_FsyncsSkipped_SimulationFindsTornInstalls(bool skipFiles, bool skipDirectories)
    {
        RequireLinux();
        using var w = new World(exchange: true);
        var tally = new Tally();
        var broken = 0;
        w.ForEveryCut(sim => new SkippingSyncFileOps(sim, skipFiles, skipDirectories), (cut, sim, journal) =>
        {
            for (var o = 0; o < 3; o++)
            {
                var seed = cut.Seed(o);
                var before = tally.Failures.Count;
                tally.Add(w.RecoverAndCheck(sim.AfterPowerLoss(new Random(seed)), journal, $"{cut} seed {seed}", [], tally.Failures, applyAfterwards: false));
                if (tally.Failures.Count > before) broken++;
            }
        }, tally.Failures, moments: [CrashMoment.Before], dryMustBeDurable: false);

        TestContext.Out.WriteLine($"fsyncs skipped (files {skipFiles}, directories {skipDirectories}): {broken} of {tally.Total} outcomes broke the install (torn tree, lost user file, or journal disagreeing with the disk)");
        Assert.That(broken, Is.GreaterThan(0), "without its fsyncs the engine must be caught by the simulation");
    }

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy (the one wired to the simulation) needs Linux");
    }

    private static void Report(string what, Tally tally, string file)
    {
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what} = {tally.Total} recoveries; {tally.Old} ended old, {tally.New} ended new, {tally.Failures.Count} failures"));
        if (tally.Failures.Count > 0)
        {
            // Every failure with the choices that produced it: the seed reproduces it exactly.
            var report = Path.Join(TestContext.CurrentContext.WorkDirectory, file + "-failures.txt");
            File.WriteAllLines(report, tally.Failures);
            TestContext.AddTestAttachment(report);
        }

        Assert.That(tally.Failures, Is.Empty, string.Join("\n", tally.Failures.Take(20)));
    }

    private enum Ended
    {
        Old,
        New,
        Neither,
    }

    private sealed class Tally
    {
        public List<string> Failures { get; } = [];
        public int Old { get; private set; }
        public int New { get; private set; }
        public int Total { get; private set; }

        public void Add(Ended e)
        {
            Total++;
            if (e == Ended.Old) Old++;
            else if (e == Ended.New) New++;
        }
    }

    /// <summary>One crash point: the k-th mutating call of an apply, and whether the cut is before or after it.</summary>
    private readonly record struct Cut(int K, CrashMoment Moment, string Call)
    {
        public int Seed(int outcome) => (K * 1000) + (Moment == CrashMoment.After ? 500 : 0) + outcome;

        public override string ToString() => $"{Moment} {Call}";
    }

    private static string Name(CommitStrategy strategy) => strategy == CommitStrategy.Layered ? "layered" : "exchange";

    /// <summary>Drops fsyncs on the way to the simulation: a deliberately broken engine for the negative control.</summary>
    private sealed class SkippingSyncFileOps(IFileOps inner, bool files, bool directories) : FileOpsDecorator(inner)
    {
        public override void Sync(Stream stream)
        {
            if (!files) Inner.Sync(stream);
        }

        public override void SyncDirectory(string path)
        {
            if (!directories) Inner.SyncDirectory(path);
        }
    }

    /// <summary>The patch on real disk, the reference listings, and factories for simulated installs and journal folders.</summary>
    private sealed class World : IDisposable
    {
        private readonly bool _exchange;
        private readonly CommitStrategy _strategy;
        private readonly string _journals;

        /// <param name="inTheWay">
        /// A path the new version adds where the player already keeps a file of their own: the old version keeps it there,
        /// the new one moves it to the state directory's preserved folder. Listings leave that path out; <see cref="Check"/>
        /// checks its content on each side.
        /// </param>
        /// <param name="more">Writes more files into the old and new trees before the patch is built.</param>
        public World(bool exchange, CommitStrategy strategy = CommitStrategy.Swap, int extraFiles = 2, int changeEvery = 10, string? inTheWay = null,
            Action<PatchScenario>? more = null, int format = 1)
        {
            _exchange = exchange;
            _strategy = strategy;
            InTheWay = inTheWay;
            S = new PatchScenario("powerloss").WithSmallGame(extraFiles, changeEvery).WithFormat(format);
            // Format 2: content rebuilt with copies of base chunks and deltas, received through the simulated file system.
            if (format == 2) Deltas.Format2ApplyTests.AddDeltaContent(S);
            if (format == 2) ContentWindowPatch.AddBuilds(S, 20_000);
            more?.Invoke(S);
            // The journal is real SQLite doing real fsyncs, thousands of times: on tmpfs when there is one, so the
            // suite measures the engine's ordering, not the disk's flush latency.
            var fast = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
            _journals = Path.Join(fast, "patcher-tests", "powerloss-" + Guid.NewGuid().ToString("N")[..8]);
            S.BuildPatch();
            if (format == 2) ContentWindowPatch.Rewrite(S); // deltas reading contents the patch rebuilds earlier
            OldListing = PatchScenario.Listing(S.OldTree, Excluded);
            NewListing = PatchScenario.Listing(S.NewTree, Excluded);
            Options = new PatcherOptions { TrustedKeys = [S.PublicKey], Strategy = strategy };
        }

        public PatchScenario S { get; }
        public string? InTheWay { get; }

        /// <summary>
        /// The engine over <paramref name="fs"/>. Format 2: a progress record every 64 KiB of a rebuilt content, so the
        /// 600 KB rebuilt file has records and cuts land between them.
        /// </summary>
        public EngineSettings Engine(IFileOps fs, string journal) =>
            S.Format == 2 ? new EngineSettings(fs, journal) { ProgressRecordBytes = 64 * 1024 } : new EngineSettings(fs, journal);
        private const string PlayersContent = "the player's own file";
        private bool Excluded(string rel) => IsUserPath(rel) || rel == InTheWay;
        public List<string> OldListing { get; }
        public List<string> NewListing { get; }
        public PatcherOptions Options { get; }

        /// <summary>The engine sees the simulation directly.</summary>
        public IFileOps Fs(SimulatedFileSystem sim) => sim;

        /// <summary>The old version plus the user's files, all durable: a machine before the update starts.</summary>
        public SimulatedFileSystem Fresh()
        {
            var fs = new SimulatedFileSystem { SupportsExchange = _exchange };
            fs.ImportTree(S.OldTree, Install);
            foreach (var f in UserFiles) fs.WriteDurably(Install + "/" + f, Encoding.UTF8.GetBytes("user " + f));
            if (InTheWay is not null) fs.WriteDurably(Install + "/" + InTheWay, Encoding.UTF8.GetBytes(PlayersContent));
            return fs;
        }

        /// <summary>A new, empty real directory for the journal and lock.</summary>
        public string Journal(string name)
        {
            var dir = Path.Join(_journals, name);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            Directory.CreateDirectory(dir);
            return dir;
        }

        /// <summary>A copy of a journal folder, so several reboots can start from the same journal state.</summary>
        public string CopyJournal(string from, string name)
        {
            var dir = Journal(name);
            foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Join(dir, Path.GetFileName(f)));
            return dir;
        }

        /// <summary>
        /// Runs one apply without a crash (counting its mutating calls and proving the simulation applies
        /// correctly), then, for every call k and both moments, an apply cut there; <paramref name="experiment"/>
        /// gets the crashed file system and the journal folder as they were at the cut. Returns the number of calls.
        /// </summary>
        public int ForEveryCut(Func<SimulatedFileSystem, IFileOps> engineFs, Action<Cut, SimulatedFileSystem, string> experiment, List<string> failures,
            CrashMoment[]? moments = null, bool dryMustBeDurable = true, Func<string, bool>? onlyCalls = null)
        {
            var calls = 0;
            ForEveryCutOf(
                () => (Fresh(), Journal("cut")),
                (sim, journal) => SimulatedFsRunner.Run(() => TransactionEngine.Apply(Engine(engineFs(sim), journal), Install, S.PatchDir, Options, null, CancellationToken.None)),
                dry =>
                {
                    Assert.That(dry.Listing(Install, Excluded), Is.EqualTo(NewListing), "a full apply in the simulation ends on the new version");
                    // The commit itself: the exchange, the first of the two renames, or a layered placement into the install.
                    Assert.That(dry.OperationLog, Has.Some.Contains(
                        _strategy == CommitStrategy.Layered ? " -> " + Install + "/" : _exchange ? " exchange " : " rename " + Install + " -> "));
                    calls = dry.OperationLog.Count;
                },
                experiment, failures, moments, dryMustBeDurable, onlyCalls);
            return calls;
        }

        /// <summary>
        /// The general loop: <paramref name="prepare"/> makes the machine before the operation (file system and a
        /// journal folder), <paramref name="operation"/> runs once without a crash (checked by
        /// <paramref name="checkDry"/>) and then once per crash point, cut there.
        /// </summary>
        public void ForEveryCutOf(Func<(SimulatedFileSystem Sim, string Journal)> prepare, Action<SimulatedFileSystem, string> operation,
            Action<SimulatedFileSystem> checkDry, Action<Cut, SimulatedFileSystem, string> experiment, List<string> failures,
            CrashMoment[]? moments = null, bool dryMustBeDurable = true, Func<string, bool>? onlyCalls = null)
        {
            var (dry, dryJournal) = prepare();
            operation(dry, dryJournal);
            checkDry(dry);
            if (dryMustBeDurable)
                Assert.That(dry.PendingCounts, Is.EqualTo((0, 0)), "after a successful run every reachable entry, byte and mode is durable");
            var calls = dry.OperationLog.Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..]).ToList();
            var n = calls.Count;

            foreach (var moment in moments ?? [CrashMoment.Before, CrashMoment.After])
            {
                for (var k = 1; k <= n; k++)
                {
                    if (onlyCalls is not null && !onlyCalls(calls[k - 1])) continue;
                    var cut = new Cut(k, moment, $"{k} {calls[k - 1]}");
                    var (sim, journal) = prepare();
                    sim.CrashAt(k, moment);
                    try
                    {
                        SimulatedFsRunner.RunUntilCrash(sim, () => operation(sim, journal));
                    }
                    catch (InvalidOperationException ex)
                    {
                        failures.Add($"{cut}: {ex.Message}: {ex.InnerException?.Message}");
                        continue;
                    }

                    experiment(cut, sim, journal);
                }
            }
        }

        /// <summary>
        /// The old version installed through Patcher (a full 1.0.0 package), and optionally the patch applied on top
        /// keeping 1.0.0 as the previous version: the starting point for rollback experiments. Returns the machine
        /// and a journal folder to copy from.
        /// </summary>
        public (SimulatedFileSystem Sim, string Journal) InstalledThroughPatcher(bool thenApplyKeepingPrevious)
        {
            var full = Path.Join(S.Root, "full-v1");
            if (!Directory.Exists(full)) S.BuildFull(S.OldTree, full, "1.0.0");
            var sim = Fresh();
            var journal = Journal("template-" + thenApplyKeepingPrevious);
            SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, full, Options, null, CancellationToken.None));
            if (thenApplyKeepingPrevious)
                SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, S.PatchDir, Options with { KeepPreviousVersion = true }, null, CancellationToken.None));
            return (sim, journal);
        }

        /// <summary>Recovers a rebooted machine (on a copy of the journal as it was at the cut) and checks it.</summary>
        public Ended RecoverAndCheck(SimulatedFileSystem fs, string journalAtCut, string label, List<string> choices, List<string> failures, bool applyAfterwards = true)
        {
            var journal = CopyJournal(journalAtCut, "recover");
            try
            {
                RecoveryResult recovered;
                try
                {
                    recovered = SimulatedFsRunner.Run(() => TransactionEngine.Recover(new EngineSettings(fs, journal), Install, Options));
                }
                catch (Exception ex)
                {
                    failures.Add($"{label}: recovery threw {ex.GetType().Name}: {ex.Message} [choices: {string.Join("; ", choices)}]");
                    return Ended.Neither;
                }

                var before = failures.Count;
                var ended = Check(fs, journal, $"{label} ({recovered.Outcome})", choices, failures, expectNew: false);
                if (ended == Ended.Old && applyAfterwards && failures.Count == before)
                {
                    // The launcher carries on: the next apply on the recovered machine ends on the new version.
                    try
                    {
                        SimulatedFsRunner.Run(() => TransactionEngine.Apply(Engine(fs, journal), Install, S.PatchDir, Options, null, CancellationToken.None));
                        if (!fs.Listing(Install, Excluded).SequenceEqual(NewListing)) failures.Add($"{label}: apply after recovery did not produce the new version");
                    }
                    catch (Exception ex)
                    {
                        failures.Add($"{label}: apply after recovery threw {ex.GetType().Name}: {ex.Message}");
                    }
                }

                return ended;
            }
            finally
            {
                Directory.Delete(journal, recursive: true);
            }
        }

        /// <summary>Old or new exactly, the journal agreeing with the tree, user files intact, no leftovers.</summary>
        /// <summary>What the journal must record for each outcome, and whether previous/ must hold the other version.</summary>
        public (string? Old, string New) InstalledVersions { get; set; } = (null, "2.0.0");

        public bool ExpectPrevious { get; set; }

        /// <summary>The user's files and the content each must have after recovery.</summary>
        public Dictionary<string, string> UserContent { get; } = UserFiles.ToDictionary(f => f, f => "user " + f);

        public Ended Check(SimulatedFileSystem fs, string journal, string label, List<string> choices, List<string> failures, bool expectNew)
        {
            void Fail(string what) => failures.Add($"{label}: {what} [choices: {string.Join("; ", choices)}]");

            var listing = fs.Listing(Install, Excluded);
            var ended = listing.SequenceEqual(OldListing) ? Ended.Old : listing.SequenceEqual(NewListing) ? Ended.New : Ended.Neither;
            if (ended == Ended.Neither)
                Fail($"the tree is neither old nor new: -{string.Join(" -", NewListing.Except(listing).Take(4))} +{string.Join(" +", listing.Except(NewListing).Take(4))}");
            else if (expectNew && ended != Ended.New)
                Fail("expected the new version, found the old one");

            // The journal must say what the disk holds: nothing installed through Patcher yet, or the new version.
            string? installed;
            using (var store = JournalStore.Open(Path.Join(journal, "journal.db"), Install, transactionPending: false, NullLogger.Instance, TimeProvider.System))
                installed = store.Installed()?.Version;
            if (ended != Ended.Neither && installed != (ended == Ended.New ? InstalledVersions.New : InstalledVersions.Old))
                Fail($"tree is {ended} but the journal records installed version '{installed}'");
            if (ExpectPrevious && ended != Ended.Neither && !fs.Listing(StateDir + "/previous", IsUserPath).SequenceEqual(ended == Ended.New ? OldListing : NewListing))
                Fail($"tree is {ended} but previous/ does not hold the other version exactly");

            foreach (var (f, expected) in UserContent)
            {
                var content = fs.ReadAllBytes(Install + "/" + f);
                if (content is null || Encoding.UTF8.GetString(content) != expected) Fail($"user file {f} lost or changed");
            }

            if (InTheWay is not null && ended != Ended.Neither)
            {
                // Old: the player's file where it was. New: the new version's file there, the player's in a preserved folder.
                var here = fs.ReadAllBytes(Install + "/" + InTheWay);
                var players = ended == Ended.Old ? here
                    : fs.Names(StateDir).Where(x => x.StartsWith("preserved-", StringComparison.Ordinal))
                        .Select(x => fs.ReadAllBytes($"{StateDir}/{x}/{InTheWay}")).FirstOrDefault(c => c is not null);
                if (players is null || Encoding.UTF8.GetString(players) != PlayersContent)
                    Fail($"the player's {InTheWay} is lost (tree is {ended})");
                var newHere = Path.Join(S.NewTree, InTheWay);
                if (ended == Ended.New && File.Exists(newHere) && (here is null || !here.AsSpan().SequenceEqual(File.ReadAllBytes(newHere))))
                    Fail($"{InTheWay} does not hold the new version's content");
            }

            // Partly rebuilt contents a progress record still describes are kept for the next apply of the same patch;
            // received blobs never are (what an interrupted attempt received is not trusted).
            var leftovers = fs.Names(StateDir).Where(x => x.StartsWith("staging-", StringComparison.Ordinal) || x.StartsWith("backup-", StringComparison.Ordinal) ||
                x.StartsWith("old-", StringComparison.Ordinal) || x is "pending" or "incoming" ||
                (x == "partial" && RawJournal.PartialHoldsUnrecorded(fs.Names(StateDir + "/partial"), Path.Join(journal, "journal.db")))).ToList();
            if (leftovers.Count > 0) Fail("leftovers in the state directory: " + string.Join(",", leftovers));
            return ended;
        }

        public void Dispose()
        {
            if (Directory.Exists(_journals)) Directory.Delete(_journals, recursive: true);
            S.Dispose();
        }
    }
}
