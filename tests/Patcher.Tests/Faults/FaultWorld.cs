using Patching.Tests.TestHelpers;

namespace Patching.Tests.Faults;

/// <summary>
/// One patch (the small game), and fresh installs of the old version with the user's files, each in its own
/// parent folder so its state directory is its own. Checks shared by the fault tests: old or new exactly, user
/// files intact, no transaction leftovers.
/// </summary>
internal sealed class FaultWorld : IDisposable
{
    public static readonly string[] UserFiles = ["saves/slot1.sav", "data/user-mod.txt", "legacy/my-notes.txt"];

    private int _runs;

    /// <param name="format">2: the patch also rebuilds content from base chunks and deltas (<see cref="Deltas.Format2ApplyTests.AddDeltaContent"/>).</param>
    public FaultWorld(string name, int extraFiles = 2, int format = 1)
    {
        S = new PatchScenario(name).WithSmallGame(extraFiles: extraFiles).WithFormat(format);
        if (format == 2) Deltas.Format2ApplyTests.AddDeltaContent(S);
        if (format == 2) ContentWindowPatch.AddBuilds(S, 20_000);
        S.BuildPatch();
        if (format == 2) ContentWindowPatch.Rewrite(S); // deltas reading contents the patch rebuilds earlier
        OldListing = PatchScenario.Listing(S.OldTree, IsUserPath);
        NewListing = PatchScenario.Listing(S.NewTree, IsUserPath);
    }

    public PatchScenario S { get; }
    public List<string> OldListing { get; }
    public List<string> NewListing { get; }

    /// <summary>
    /// The engine over <paramref name="fs"/>. Format 2: a progress record every 64 KiB of a rebuilt content, so faults hit
    /// the records' fsyncs and the rebuilt file between them too.
    /// </summary>
    public Patching.Transaction.EngineSettings Engine(Patching.IO.IFileOps fs) =>
        S.Format == 2 ? new Patching.Transaction.EngineSettings(fs) { ProgressRecordBytes = 64 * 1024 } : new Patching.Transaction.EngineSettings(fs);

    public static bool IsUserPath(string rel) => UserFiles.Contains(rel) || rel is "saves" or "legacy";

    public PatcherOptions Options(string strategy = "swap") =>
        new() { TrustedKeys = [S.PublicKey], Strategy = Enum.Parse<CommitStrategy>(strategy, ignoreCase: true), CleanupInBackground = false };

    /// <summary>A new install of the old version plus the user's files, under <paramref name="root"/> (default: the scenario root).</summary>
    public string NewInstall(string? root = null)
    {
        var install = Path.Join(root ?? S.Root, "run" + Interlocked.Increment(ref _runs), "game");
        PatchScenario.CopyTree(S.OldTree, install);
        foreach (var f in UserFiles) PatchScenario.Write(install, f, "user " + f);
        return install;
    }

    public static string StateDir(string install) => Path.Join(Path.GetDirectoryName(install)!, ".game.patcher");

    public enum Ended
    {
        Old,
        New,
        Neither,
    }

    public Ended Classify(string install)
    {
        var listing = PatchScenario.Listing(install, IsUserPath);
        return listing.SequenceEqual(OldListing) ? Ended.Old : listing.SequenceEqual(NewListing) ? Ended.New : Ended.Neither;
    }

    /// <summary>Problems with the install right now: a mix of versions, a lost or changed user file.</summary>
    public IEnumerable<string> Problems(string install)
    {
        if (Classify(install) == Ended.Neither)
        {
            var listing = PatchScenario.Listing(install, IsUserPath);
            yield return $"tree is neither old nor new: -{string.Join(" -", NewListing.Except(listing).Take(3))} +{string.Join(" +", listing.Except(NewListing).Take(3))}";
        }

        foreach (var f in UserFiles)
        {
            var path = Path.Join(install, f);
            if (!File.Exists(path) || File.ReadAllText(path) != "user " + f) yield return $"user file {f} lost or changed";
        }
    }

    /// <summary>Staging, old-tree, backup folders or the pending marker left in the state directory.</summary>
    public static List<string> Leftovers(string install)
    {
        var state = StateDir(install);
        return Directory.Exists(state)
            ? Directory.EnumerateFileSystemEntries(state).Select(p => Path.GetFileName(p)!)
                .Where(x => x.StartsWith("staging-", StringComparison.Ordinal) || x.StartsWith("old-", StringComparison.Ordinal)
                    || x.StartsWith("backup-", StringComparison.Ordinal) || x is "pending" or "trash" or "incoming"
                    || (x == "partial" && RawJournal.PartialHoldsUnrecorded(Directory.EnumerateFileSystemEntries(Path.Join(state, x)).Select(p => Path.GetFileName(p)!), Path.Join(state, "journal.db")))).ToList()
            : [];
    }

    public void Dispose() => S.Dispose();
}
