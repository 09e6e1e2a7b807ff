using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Tests.TestHelpers;
using Patching.Transaction;

namespace Patching.Tests.PowerLoss;

/// <summary>
/// Simulated power loss at every crash point of an apply: the install and state directory live in a
/// <see cref="SimulatedFileSystem"/> that, at the cut, keeps, drops or garbles everything not yet made durable
/// (docs/recovery.md, "The power-loss model"). Recovery then runs on what a reboot would find; the install must be
/// exactly the old or the new version, the user's files intact, and nothing left in the state directory.
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

    private static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves" or "legacy";

    [TestCase(true, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(exchange)")]
    [TestCase(false, TestName = "Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(two renames)")]
    public void Apply_PowerLossAtEveryPoint_RecoveryYieldsOldOrNewExactly(bool exchange)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy (the only one wired to the simulation) needs Linux");
        using var w = new World(exchange);

        // A run without a crash: the number of crash points, and the proof that the simulation applies correctly.
        var dry = w.Fresh();
        var applied = SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(dry, w.Journal("dry")), Install, w.S.PatchDir, w.Options, null, CancellationToken.None));
        Assert.That(applied.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(dry.Listing(Install, IsUserPath), Is.EqualTo(w.NewListing), "a full apply in the simulation ends on the new version");
        Assert.That(dry.PendingCounts, Is.EqualTo((0, 0)), "after a successful apply every reachable entry, byte and mode is durable");
        var points = dry.OperationLog;
        var n = points.Count;
        Assert.That(points, Has.Some.Contains(exchange ? "exchange" : "rename " + Install + " -> "));

        var failures = new List<string>();
        int endedOld = 0, endedNew = 0, experiments = 0;
        foreach (var moment in new[] { CrashMoment.Before, CrashMoment.After })
        {
            for (var k = 1; k <= n; k++)
            {
                var label = $"{moment} {points[k - 1]}";
                var sim = w.Fresh();
                sim.CrashAt(k, moment);
                var journal = w.Journal($"k{k}-{moment}");
                try
                {
                    SimulatedFsRunner.RunUntilCrash(sim, () => TransactionEngine.Apply(new EngineSettings(sim, journal), Install, w.S.PatchDir, w.Options, null, CancellationToken.None));
                }
                catch (InvalidOperationException ex)
                {
                    failures.Add($"{label}: {ex.Message}: {ex.InnerException?.Message}");
                    continue;
                }

                for (var o = 0; o < OutcomesPerPoint; o++)
                {
                    var seed = (k * 100) + (moment == CrashMoment.After ? 50 : 0) + o;
                    var choices = new List<string>();
                    var rebooted = sim.AfterPowerLoss(new Random(seed), choices);
                    var outcome = w.RecoverAndCheck(rebooted, journal, $"{label} seed {seed}", choices, failures);
                    experiments++;
                    if (outcome == Ended.Old) endedOld++;
                    else if (outcome == Ended.New) endedNew++;
                }

                Directory.Delete(journal, recursive: true);
            }
        }

        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"power loss ({(exchange ? "exchange" : "two renames")}): {n} mutating calls x 2 moments = {2 * n} crash points x {OutcomesPerPoint} outcomes = {experiments} recoveries; {endedOld} ended old, {endedNew} ended new, {failures.Count} failures"));
        if (failures.Count > 0)
        {
            // Every failure with the choices that produced it: a seed reproduces it exactly.
            var report = Path.Join(TestContext.CurrentContext.WorkDirectory, $"powerloss-failures-{(exchange ? "exchange" : "renames")}.txt");
            File.WriteAllLines(report, failures);
            TestContext.AddTestAttachment(report);
        }

        Assert.That(failures, Is.Empty, string.Join("\n", failures.Take(20)));
        Assert.That(experiments, Is.EqualTo(2 * n * OutcomesPerPoint));
        Assert.That(endedOld, Is.GreaterThan(0), "some cuts must land before the commit");
        Assert.That(endedNew, Is.GreaterThan(0), "some cuts must land after the commit");
    }

    private enum Ended
    {
        Old,
        New,
        Neither,
    }

    /// <summary>The patch on real disk, the reference listings, and factories for simulated installs and journal folders.</summary>
    private sealed class World : IDisposable
    {
        private readonly bool _exchange;

        private readonly string _journals;

        public World(bool exchange)
        {
            _exchange = exchange;
            S = new PatchScenario("powerloss").WithSmallGame(extraFiles: 2);
            // The journal is real SQLite doing real fsyncs, thousands of times: on tmpfs when there is one, so the
            // suite measures the engine's ordering, not the disk's flush latency.
            var fast = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
            _journals = Path.Join(fast, "patcher-tests", "powerloss-" + Guid.NewGuid().ToString("N")[..8]);
            S.BuildPatch();
            OldListing = PatchScenario.Listing(S.OldTree, IsUserPath);
            NewListing = PatchScenario.Listing(S.NewTree, IsUserPath);
            Options = new PatcherOptions { TrustedKeys = [S.PublicKey], Strategy = CommitStrategy.Swap };
        }

        public PatchScenario S { get; }
        public List<string> OldListing { get; }
        public List<string> NewListing { get; }
        public PatcherOptions Options { get; }

        /// <summary>The old version plus the user's files, all durable: a machine before the update starts.</summary>
        public SimulatedFileSystem Fresh()
        {
            var fs = new SimulatedFileSystem { SupportsExchange = _exchange };
            fs.ImportTree(S.OldTree, Install);
            foreach (var f in UserFiles) fs.WriteDurably(Install + "/" + f, Encoding.UTF8.GetBytes("user " + f));
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

        /// <summary>
        /// Recovers a rebooted machine (with a copy of the journal as it was at the cut) and checks it: old or new
        /// exactly, journal agreeing with the tree, user files intact, no leftovers, and a later apply succeeds.
        /// </summary>
        public Ended RecoverAndCheck(SimulatedFileSystem fs, string journalAtCut, string label, List<string> choices, List<string> failures)
        {
            var journal = Journal("recover");
            foreach (var f in Directory.EnumerateFiles(journalAtCut)) File.Copy(f, Path.Join(journal, Path.GetFileName(f)));
            var before = failures.Count;
            void Fail(string what) => failures.Add($"{label}: {what} [choices: {string.Join("; ", choices)}]");

            RecoveryResult recovered;
            try
            {
                recovered = SimulatedFsRunner.Run(() => TransactionEngine.Recover(new EngineSettings(fs, journal), Install, Options));
            }
            catch (Exception ex)
            {
                Fail("recovery threw " + ex.GetType().Name + ": " + ex.Message);
                return Ended.Neither;
            }

            var listing = fs.Listing(Install, IsUserPath);
            var ended = listing.SequenceEqual(OldListing) ? Ended.Old : listing.SequenceEqual(NewListing) ? Ended.New : Ended.Neither;
            if (ended == Ended.Neither)
            {
                Fail($"after {recovered.Outcome} the tree is neither old nor new: -{string.Join(" -", NewListing.Except(listing).Take(4))} +{string.Join(" +", listing.Except(NewListing).Take(4))}");
            }

            // The journal must say what the disk holds: nothing installed through Patcher yet, or the new version.
            string? installed;
            using (var store = JournalStore.Open(Path.Join(journal, "journal.db"), transactionPending: false, NullLogger.Instance))
                installed = store.Installed()?.Version;
            if (ended != Ended.Neither && installed != (ended == Ended.New ? "2.0.0" : null))
                Fail($"tree is {ended} but the journal records installed version '{installed}'");

            foreach (var f in UserFiles)
            {
                var content = fs.ReadAllBytes(Install + "/" + f);
                if (content is null || Encoding.UTF8.GetString(content) != "user " + f) Fail($"user file {f} lost or changed");
            }

            var leftovers = fs.Names(StateDir).Where(x => x.StartsWith("staging-", StringComparison.Ordinal) || x.StartsWith("old-", StringComparison.Ordinal) || x == "pending").ToList();
            if (leftovers.Count > 0) Fail("leftovers in the state directory: " + string.Join(",", leftovers));

            if (ended == Ended.Old && failures.Count == before)
            {
                // The launcher carries on: the next apply on the recovered machine ends on the new version.
                try
                {
                    SimulatedFsRunner.Run(() => TransactionEngine.Apply(new EngineSettings(fs, journal), Install, S.PatchDir, Options, null, CancellationToken.None));
                    if (!fs.Listing(Install, IsUserPath).SequenceEqual(NewListing)) Fail("apply after recovery did not produce the new version");
                }
                catch (Exception ex)
                {
                    Fail("apply after recovery threw " + ex.GetType().Name + ": " + ex.Message);
                }
            }

            Directory.Delete(journal, recursive: true);
            return ended;
        }

        public void Dispose()
        {
            if (Directory.Exists(_journals)) Directory.Delete(_journals, recursive: true);
            S.Dispose();
        }
    }
}
