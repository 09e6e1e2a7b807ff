// Runs the layered commit against files that other handles really hold open, under the host's own locking
// rules. Published for win-x64 and run under wine64 (.ci/wine-scenarios.sh), these are Windows' rules as Wine
// implements them: a replace over an open file fails with error 5 or 32 unless the holder allowed delete sharing.
//
// Every patch is signed with Ed25519 (libsodium, which runs under Wine; Wine's CNG cannot import ECDSA P-256 keys)
// and applied through Patcher.Apply or the published patchtool.exe (PATCHTOOL_EXE), signature checked. Everything
// runs as in production: signature, journal (SQLite), staging, backups (CreateHardLink), the lock layers
// (FileRenameInfoEx, MoveFileEx, GC pass, rename aside), rollback, Restart Manager lookup.
using System.Diagnostics;
using Patching.WineScenarios;

var filter = args.Length > 0 ? args[0] : null;
if (filter == "gc-probe")
{
    void Gc(string what)
    {
        Console.WriteLine("gc after " + what);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Console.WriteLine("  ok");
    }

    Gc("start");
    using (var w = new World("probe"))
    {
        Gc("build");
        var l = new ScenarioLog();
        var pkg = Patching.Sources.PatchPackage.Open(w.PatchDir, new Patching.PatcherOptions().Limits);
        Gc("open");
        var retry = new Patching.Commit.LockRetry(TimeSpan.FromMilliseconds(50), TimeProvider.System, l, true);
        retry.Run("x", "probe", null, () => { }, null);
        Gc("polly");
        using (var j = Patching.Journal.JournalStore.Open(Path.Join(Path.GetTempPath(), "probe-" + Guid.NewGuid().ToString("N") + ".db"), Path.GetTempPath(), false, l, TimeProvider.System))
        {
            _ = j.Pending();
        }

        Gc("sqlite");
        w.Apply(l, TimeSpan.FromSeconds(5));
        Gc("apply");
    }

    return 0;
}
var scenarios = new (string Name, Func<ScenarioLog, bool> Run)[]
{
    ("held-exclusive-then-released", Scenarios.HeldExclusiveThenReleased),
    ("held-exclusive-forever", Scenarios.HeldExclusiveForever),
    ("held-with-delete-sharing", Scenarios.HeldWithDeleteSharing),
    ("case-only-renames", Scenarios.CaseOnlyRenames),
    ("case-only-rename-with-player-file", Scenarios.CaseOnlyRenameWithPlayerFile),
    ("refused-first-patch-leaves-nothing", Scenarios.RefusedFirstPatchLeavesNothing),
    ("patchtool-held-exclusive-then-released", Scenarios.PatchtoolHeldExclusiveThenReleased),
    ("patchtool-held-exclusive-forever", Scenarios.PatchtoolHeldExclusiveForever),
    ("patchtool-held-with-delete-sharing", Scenarios.PatchtoolHeldWithDeleteSharing),
    ("patchtool-wrong-key-refused", Scenarios.PatchtoolWrongKeyRefused),
    ("directory-swap-refused-while-step-holds-it", ReparseScenarios.DirectorySwapRefusedWhileStepHoldsIt),
    ("junction-swapped-in-during-layered-commit", ReparseScenarios.JunctionSwappedInDuringLayeredCommit),
    ("junction-planted-in-install", ReparseScenarios.JunctionPlantedInInstall),
};

Console.WriteLine($"platform: {Environment.OSVersion} ({System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier}), wine: {Scenarios.WineVersion() ?? "no"}");
int passed = 0, failed = 0, skipped = 0;
foreach (var (name, run) in scenarios)
{
    if (filter is not null && !name.Contains(filter, StringComparison.Ordinal)) continue;
    var log = new ScenarioLog();
    var watch = Stopwatch.StartNew();
    bool ok;
    try
    {
        ok = run(log);
    }
    catch (ScenarioSkipped skip)
    {
        foreach (var line in log.Lines) Console.WriteLine($"    {line}");
        Console.WriteLine($"SKIP {name}: {skip.Message}");
        skipped++;
        continue;
    }
    catch (Exception ex)
    {
        log.Fail($"unexpected {ex.GetType().Name}: {ex.Message}");
        Console.WriteLine(ex);
        ok = false;
    }

    foreach (var line in log.Lines) Console.WriteLine($"    {line}");
    Console.WriteLine($"{(ok ? "PASS" : "FAIL")} {name} ({watch.ElapsedMilliseconds} ms)");
    if (ok) passed++;
    else failed++;
}

if (skipped > 0) Console.WriteLine($"wine scenarios skipped (the host cannot run them): {skipped}");
Console.WriteLine($"wine scenarios: {passed} passed, {failed} failed");
return failed == 0 && passed > 0 ? 0 : 1;
