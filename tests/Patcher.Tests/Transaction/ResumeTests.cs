using Patching.Tests.TestHelpers;

namespace Patching.Tests.Transaction;

[Category("Crash")]
public sealed class ResumeTests
{
    [Test]
    public void Apply_AfterKillMidStaging_ResumesWithoutRewritingVerifiedFiles()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("inode identity is read through statx (Linux)");
        using var s = new PatchScenario("resume").WithSmallGame(extraFiles: 700, changeEvery: 1).Install();
        s.BuildPatch();
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);

        // Find the crash point just before the last file is written, so most of the staging is done.
        var log = Path.Join(s.Root, "points.log");
        var probe = Path.Join(s.Root, "probe", "game");
        PatchScenario.CopyTree(s.OldTree, probe);
        Assert.That(CrashHost.Start(["apply", probe, s.PatchDir, trust, "swap"], crashLog: log).ExitCode, Is.EqualTo(0));
        var points = File.ReadAllLines(log);
        var lastRows = Array.FindLastIndex(points, p => p.Contains("journal files", StringComparison.Ordinal));
        var firstRows = Array.FindIndex(points, p => p.Contains("journal files", StringComparison.Ordinal));
        Assert.That(firstRows, Is.LessThan(lastRows), "the patch is large enough to journal staged files in several batches");

        var killed = CrashHost.Start(["apply", s.InstallDir, s.PatchDir, trust, "swap"], crashAt: lastRows + 1);
        Assert.That(killed.Killed, Is.True, killed.StdErr);
        var stateDir = Path.Join(s.ParentDir, ".game.patcher");
        var staging = Directory.GetDirectories(stateDir, "staging-*").Single();
        var stagedBefore = Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(staging, f), f => ApplyTests.Inode(f));
        Assert.That(stagedBefore, Has.Count.GreaterThan(10));
        // What the first attempt journaled as staged and verified. (How many staged files were not journaled yet depends
        // on timing: rows are written 256 at a time while the other workers go on staging, so a bound on those was flaky.)
        Dictionary<string, Patching.Journal.FileRow> journaled;
        using (var journal = Patching.Journal.JournalStore.Open(Path.Join(stateDir, "journal.db"), s.InstallDir, transactionPending: true,
                   Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System))
            journaled = journal.Files(journal.Pending()!.Id);
        Assert.That(journaled.Keys, Is.SubsetOf(stagedBefore.Keys));
        Assert.That(journaled, Is.Not.Empty, "rows were journaled before the kill");

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);

        Assert.That(result.Resumed, Is.True);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        // Files verified and journaled by the first attempt keep their inode: they were not written again.
        var rewritten = journaled.Keys.Where(p => ApplyTests.Inode(Path.Join(s.InstallDir, p)) != stagedBefore[p]).ToList();
        Assert.That(rewritten, Is.Empty, "files journaled as staged and verified are not written again");
        Assert.That(result.FilesReused, Is.GreaterThanOrEqualTo(journaled.Count), "the resumed apply counts them as reused, not written");
        Assert.That(result.FilesWritten, Is.LessThan(stagedBefore.Count), "only the files not yet journaled are written again");
    }
}
