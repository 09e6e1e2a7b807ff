using System.Diagnostics;
using System.Security.Cryptography;
using Patching.Tests.Faults;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Concurrency;

/// <summary>
/// Several processes on one install: two appliers (one wins, the other is told Busy or that it is up to date),
/// a reader (a running game) during an apply, and recovery at app start racing an apply. Appliers run in the
/// Patcher.CrashHost child process, which exits 0 when applied, 5 when busy and 3 on a PatcherException.
/// </summary>
[Category("Concurrency")]
[NonParallelizable]
public sealed class ConcurrencyTests
{
    private const int ExitApplied = 0, ExitRefused = 3, ExitBusy = 5;

    [Test]
    public void Apply_WhileAnotherProcessHoldsTheLock_ReportsBusyAndChangesNothing()
    {
        using var w = new FaultWorld("busy");
        var install = w.NewInstall();
        var trust = Trust(w);
        var state = FaultWorld.StateDir(install);
        Directory.CreateDirectory(state);
        // The lock file itself cannot be read while held (flock), so it is left out of the listing.
        static List<string> Parent(string install) => PatchScenario.Listing(Path.GetDirectoryName(install)!, rel => rel == ".game.patcher/lock");
        var before = Parent(install);

        using (var held = TransactionLock.TryAcquire(Path.Join(state, "lock")))
        {
            Assert.That(held, Is.Not.Null);
            var busy = Child.Start("apply", install, w.S.PatchDir, trust, "swap").Finish();

            Assert.That(busy.ExitCode, Is.EqualTo(ExitBusy), busy.StdErr);
            Assert.That(busy.StdOut, Does.StartWith("Busy"));
            Assert.That(Parent(install), Is.EqualTo(before), "a busy apply changes nothing");
        }

        var applied = Child.Start("apply", install, w.S.PatchDir, trust, "swap").Finish();
        Assert.That(applied.ExitCode, Is.EqualTo(ExitApplied), applied.StdErr);
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
    }

    [Test]
    public void Apply_TwoProcessesAtOnce_OneAppliesTheOtherIsBusyOrUpToDate()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var w = new FaultWorld("two-appliers", extraFiles: 300);
        var trust = Trust(w);
        int busy = 0, upToDate = 0;
        for (var round = 0; round < 4; round++)
        {
            var install = w.NewInstall();
            var a = Child.Start("apply", install, w.S.PatchDir, trust, "swap");
            var b = Child.Start("apply", install, w.S.PatchDir, trust, "swap");
            var results = new[] { a.Finish(), b.Finish() };
            var summary = string.Join(" | ", results.Select(r => $"{r.ExitCode}: {r.StdOut.Trim()} {r.StdErr.Trim()}"));

            Assert.That(results.Count(r => r.ExitCode == ExitApplied), Is.EqualTo(1), summary);
            var loser = results.Single(r => r.ExitCode != ExitApplied);
            if (loser.ExitCode == ExitBusy) busy++;
            else if (loser.ExitCode == ExitRefused && loser.StdErr.StartsWith("NotNewer", StringComparison.Ordinal)) upToDate++;
            else Assert.Fail("the losing applier must report Busy or NotNewer: " + summary);

            Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New), summary);
            Assert.That(w.Problems(install), Is.Empty);
            Assert.That(FaultWorld.Leftovers(install), Is.Empty);
        }

        TestContext.Out.WriteLine($"two appliers at once, 4 rounds: the loser was busy {busy} times, up to date {upToDate} times");
    }

    [Test]
    public void Apply_WhileAnotherProcessReadsTheInstall_EveryReadSeesWholeOldOrNewFiles()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var w = new FaultWorld("reader", extraFiles: 300);
        var install = w.NewInstall();
        var trust = Trust(w);
        // Files both versions have, with their two acceptable hashes.
        var shared = Directory.EnumerateFiles(w.S.OldTree, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(w.S.OldTree, f))
            .Where(rel => File.Exists(Path.Join(w.S.NewTree, rel)))
            .ToDictionary(rel => rel, rel => new HashSet<string> { Hash(Path.Join(w.S.OldTree, rel)), Hash(Path.Join(w.S.NewTree, rel)) });
        // A running game keeps its executable open across the update.
        using var running = new FileStream(Path.Join(install, "game.exe"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

        var child = Child.Start("apply", install, w.S.PatchDir, trust, "swap");
        int reads = 0, torn = 0, missing = 0;
        var paths = shared.Keys.ToList();
        while (!child.HasExited)
        {
            foreach (var rel in paths)
            {
                try
                {
                    if (!shared[rel].Contains(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Join(install, rel)))))) torn++;
                    reads++;
                }
                catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
                {
                    missing++;
                }

                if (child.HasExited) break;
            }
        }

        var result = child.Finish();
        TestContext.Out.WriteLine($"reader during apply: {reads} whole-file reads, {torn} torn, {missing} missing");
        Assert.That(result.ExitCode, Is.EqualTo(ExitApplied), result.StdErr);
        Assert.That(reads, Is.GreaterThan(0));
        Assert.That(torn, Is.Zero, "every read is a whole old or whole new file");
        Assert.That(missing, Is.Zero, "the exchange never leaves a file both versions have missing");
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        var stillRunning = new byte[running.Length];
        running.ReadExactly(stillRunning);
        Assert.That(stillRunning, Is.EqualTo(File.ReadAllBytes(Path.Join(w.S.OldTree, "game.exe"))), "the running game still reads its own (old) executable");
    }

    [Test]
    public void Recover_RacingApply_ReportsBusyOrNothingPendingAndNeverInterferes()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var w = new FaultWorld("recover-race", extraFiles: 300);
        var install = w.NewInstall();
        var trust = Trust(w);

        var child = Child.Start("apply", install, w.S.PatchDir, trust, "swap");
        var outcomes = new Dictionary<RecoveryOutcome, int>();
        while (!child.HasExited)
        {
            var outcome = Patcher.Recover(install, w.Options()).Outcome;
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        var result = child.Finish();
        TestContext.Out.WriteLine("recover racing apply: " + string.Join(", ", outcomes.Select(kv => $"{kv.Key} x{kv.Value}")));
        Assert.That(result.ExitCode, Is.EqualTo(ExitApplied), result.StdErr);
        Assert.That(outcomes.Keys, Is.SubsetOf(new[] { RecoveryOutcome.NothingPending, RecoveryOutcome.Busy }), "recovery never rolls a live apply forward or back");
        Assert.That(w.Classify(install), Is.EqualTo(FaultWorld.Ended.New));
        Assert.That(w.Problems(install), Is.Empty);
        Assert.That(FaultWorld.Leftovers(install), Is.Empty);
    }

    private static string Trust(FaultWorld w)
    {
        var trust = Path.Join(w.S.Root, "trust.pub");
        if (!File.Exists(trust)) File.WriteAllText(trust, w.S.PublicKey);
        return trust;
    }

    private static string Hash(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Patcher.CrashHost started without waiting, so several can run at once.</summary>
    private sealed class Child
    {
        private readonly Process _process;
        private readonly Task<string> _stdout;
        private readonly Task<string> _stderr;

        private Child(Process process)
        {
            _process = process;
            _stdout = process.StandardOutput.ReadToEndAsync();
            _stderr = process.StandardError.ReadToEndAsync();
        }

        public bool HasExited => _process.HasExited;

        public static Child Start(params string[] args)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Join(AppContext.BaseDirectory, "Patcher.CrashHost.dll"));
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment.Remove("PATCHER_TEST_CRASH_AT");
            psi.Environment.Remove("PATCHER_TEST_CRASH_LOG");
            return new Child(Process.Start(psi)!);
        }

        public CrashHost.Run Finish()
        {
            using (_process)
            {
                if (!_process.WaitForExit(TimeSpan.FromMinutes(2)))
                {
                    _process.Kill(entireProcessTree: true);
                    throw new TimeoutException("the child apply did not finish within 2 minutes");
                }

                return new CrashHost.Run(_process.ExitCode, _stdout.Result, _stderr.Result);
            }
        }
    }
}
