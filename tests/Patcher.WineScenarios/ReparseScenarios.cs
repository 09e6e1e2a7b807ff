using Patching.IO;
using Patching.Transaction;

namespace Patching.WineScenarios;

/// <summary>A scenario the host cannot run (what it lacks is the message): reported as SKIP, neither passed nor failed.</summary>
internal sealed class ScenarioSkipped(string reason) : Exception(reason);

/// <summary>
/// A player's process swapping a directory of the install while the layered commit runs, and junctions planted inside
/// the install pointing outside: nothing outside may change, and the install must end as the old or the new version
/// exactly. Each directory on a step's way is held open without delete sharing while the step runs
/// (<see cref="WindowsFileOps"/>), and a junction or symlink on the way refuses the step.
/// </summary>
internal static class ReparseScenarios
{
    /// <summary>An outside folder with files named as the install's <c>data/</c> files, other content; what a swap would expose.</summary>
    private static string Outside(World w)
    {
        var outside = Path.Join(Path.GetDirectoryName(Path.GetDirectoryName(w.InstallDir))!, "outside");
        foreach (var name in new[] { "level1.pak", "level2.pak", "level3.pak", "old-only.txt" })
            World.Write(outside, name, World.Content("outside " + name, 1000));
        return outside;
    }

    private static PatcherOptions Options(World w, ScenarioLog log) =>
        new() { Strategy = CommitStrategy.Layered, Logger = log, FileLockTimeout = TimeSpan.FromSeconds(5), TrustedKeys = [w.PublicKey] };

    /// <summary>
    /// At every step of the apply on a path below <c>data\</c>, once that step holds its directories, another party tries
    /// to rename <c>data</c> away so that it can put its own folder (or a junction) in its place. Every attempt must be
    /// refused while the step runs; the apply ends with the new version exactly; the outside folder is untouched; and once
    /// no step runs, the same rename is allowed (so it was the held handles that refused it).
    /// </summary>
    public static bool DirectorySwapRefusedWhileStepHoldsIt(ScenarioLog log)
    {
        if (!OperatingSystem.IsWindows()) throw new ScenarioSkipped("Windows' file system (or Wine's) is what this shows");
        using var w = new World("held-dirs");
        var outside = Outside(w);
        var before = w.Listing(outside);
        var data = w.Install("data");
        var moved = Path.Join(Path.GetDirectoryName(w.InstallDir)!, "data-moved");
        var refused = new List<(string Step, int Error)>();
        var swapped = new List<string>();
        var fs = new WindowsFileOps(path =>
        {
            if (!path.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal)) return;
            try
            {
                Directory.Move(data, moved);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                refused.Add((Path.GetRelativePath(w.InstallDir, path), ex.HResult & 0xFFFF));
                return;
            }

            // The rename went through: finish the swap the way an attacker would, with a folder of its own.
            swapped.Add(path);
            Directory.Move(outside, data);
        });

        ApplyResult? result = null;
        PatcherException? error = null;
        try
        {
            result = TransactionEngine.Apply(new EngineSettings(fs), w.InstallDir, w.PatchDir, Options(w, log), null, CancellationToken.None);
        }
        catch (PatcherException ex)
        {
            error = ex;
        }

        log.Check(swapped.Count == 0, "no swap got in while a step held data\\: " + string.Join(", ", swapped));
        log.Check(refused.Count >= 3, $"the rename of data\\ was tried at {refused.Count} steps and refused each time: {string.Join(", ", refused.Select(r => $"{r.Step} (Win32 error {r.Error})"))}");
        log.Check(error is null && result is not null, $"apply succeeded: {error?.Code} {error?.Message}");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly (hash listing, user file included)");
        log.Check(Directory.Exists(outside) && w.Listing(outside).SequenceEqual(before), "the outside folder is byte-identical");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));
        try
        {
            Directory.Move(data, moved);
            Directory.Move(moved, data);
            log.Check(true, "with no step running, the same rename of data\\ is allowed: the held handles refused it");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Fail($"with no step running, the rename of data\\ still fails ({ex.Message}): the refusals above prove nothing");
        }

        return !log.Failed;
    }

    /// <summary>
    /// Just before the first placement into <c>data\</c> of the layered commit, <c>data</c> is renamed away and a junction
    /// to an outside folder put in its place (between two steps, where no handle is held). The placement must be refused
    /// as <see cref="PatchErrorCode.SymlinkEscape"/> with nothing outside written, linked or deleted; once the player's
    /// process puts <c>data</c> back, recovery leaves the old or the new version exactly.
    /// </summary>
    public static bool JunctionSwappedInDuringLayeredCommit(ScenarioLog log)
    {
        if (!OperatingSystem.IsWindows()) throw new ScenarioSkipped("Windows' file system (or Wine's) is what this shows");
        using var w = new World("junction-swap");
        var outside = Outside(w);
        var before = w.Listing(outside);
        var oldListing = w.Listing(w.InstallDir);
        RequireLinks(w);
        var data = w.Install("data");
        var moved = Path.Join(Path.GetDirectoryName(w.InstallDir)!, "data-moved");
        string? linkError = "not tried";
        var racing = new SwapBeforeFileOps(FileOps.Instance, to => to.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal), () =>
        {
            Directory.Move(data, moved);
            linkError = OperatingSystem.IsWindows() ? WindowsLinks.TryLink(data, outside) : "not Windows";
        });

        PatcherException? error = null;
        try
        {
            TransactionEngine.Apply(new EngineSettings(racing), w.InstallDir, w.PatchDir, Options(w, log), null, CancellationToken.None);
        }
        catch (PatcherException ex)
        {
            error = ex;
        }

        log.Check(racing.FiredAt is not null && linkError is null, $"the junction was swapped in before placing '{racing.FiredAt}' ({linkError ?? "made"})");
        log.Check(error?.ToString().Contains("reparse point", StringComparison.Ordinal) == true, $"the apply was refused at the junction: {error?.Code} {error?.Message}");
        log.Check(w.Listing(outside).SequenceEqual(before), "the outside folder is byte-identical");

        // The player's process puts data\ back; recovery then finishes or undoes the interrupted update.
        if (WindowsLinks.IsLink(data)) Directory.Delete(data);
        if (Directory.Exists(moved)) Directory.Move(moved, data);
        var recovered = Patcher.Recover(w.InstallDir, Options(w, log));
        var after = w.Listing(w.InstallDir);
        log.Check(after.SequenceEqual(oldListing) || after.SequenceEqual(w.NewListing),
            $"after recovery ({recovered.Outcome}) the install is the {(after.SequenceEqual(oldListing) ? "old" : after.SequenceEqual(w.NewListing) ? "new" : "neither old nor new")} version exactly");
        log.Check(w.Listing(outside).SequenceEqual(before), "the outside folder is still byte-identical");
        return !log.Failed;
    }

    /// <summary>
    /// A player's junction inside the install (<c>mods\link</c>) pointing to an outside folder, there before the update:
    /// the walk treats it as the player's entry and never descends, so the update applies and nothing outside changes.
    /// </summary>
    public static bool JunctionPlantedInInstall(ScenarioLog log)
    {
        if (!OperatingSystem.IsWindows()) throw new ScenarioSkipped("Windows' file system (or Wine's) is what this shows");
        using var w = new World("junction-planted");
        var outside = Outside(w);
        var before = w.Listing(outside);
        RequireLinks(w);
        var link = w.Install("mods/link");
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        var made = WindowsLinks.TryLink(link, outside);
        log.Check(made is null, "junction planted: " + (made ?? "mods\\link -> outside"));

        var result = w.Apply(log, TimeSpan.FromSeconds(5));

        log.Check(result is not null, "apply succeeded");
        log.Check(WindowsLinks.IsLink(link), "the player's junction is still a junction");
        log.Check(w.Listing(outside).SequenceEqual(before), "the outside folder is byte-identical");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    /// <summary>Skips the scenario, naming what the host answered, when it cannot make a junction or directory symlink.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("windows")]
    private static void RequireLinks(World w)
    {
        var probe = Path.Join(Path.GetDirectoryName(w.InstallDir)!, "link-probe");
        var target = Path.Join(Path.GetDirectoryName(w.InstallDir)!, "link-probe-target");
        Directory.CreateDirectory(target);
        var failure = WindowsLinks.TryLink(probe, target);
        if (WindowsLinks.IsLink(probe)) Directory.Delete(probe);
        Directory.Delete(target);
        if (failure is not null) throw new ScenarioSkipped("this host cannot make a junction or directory symlink: " + failure);
    }
}

/// <summary>The real file system, with another party acting once just before the first rename whose destination the predicate picks.</summary>
internal sealed class SwapBeforeFileOps(IFileOps inner, Func<string, bool> at, Action act) : FileOpsDecorator(inner)
{
    private int _fired;

    public string? FiredAt { get; private set; }

    public override void Rename(string from, string to)
    {
        if (at(to) && Interlocked.Exchange(ref _fired, 1) == 0)
        {
            FiredAt = to;
            act();
        }

        base.Rename(from, to);
    }
}
