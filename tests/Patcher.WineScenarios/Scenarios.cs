using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;

namespace Patching.WineScenarios;

/// <summary>Collects the library's log lines (Debug and above: a replace that succeeds at its first try is logged at Debug) and the scenario's own checks.</summary>
internal sealed class ScenarioLog : ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();
    private bool _failed;

    public IReadOnlyList<string> Lines => _lines.ToList();
    public bool Failed => _failed;

    public void Note(string text) => _lines.Enqueue(text);

    public void Fail(string text)
    {
        _failed = true;
        _lines.Enqueue("CHECK FAILED: " + text);
    }

    public void Check(bool condition, string what)
    {
        if (condition) _lines.Enqueue("ok: " + what);
        else Fail(what);
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) _lines.Enqueue($"[{logLevel}] {formatter(state, exception)}");
    }
}

/// <summary>Progress reported on the engine's thread at the moment it is reported (<see cref="Progress{T}"/> posts it later).</summary>
internal sealed class Reported(Action<PatchProgress> onReport) : IProgress<PatchProgress>
{
    public void Report(PatchProgress value) => onReport(value);
}

internal static class Scenarios
{
    private const string Locked = "data/level2.pak";

    public static bool HeldExclusiveThenReleased(ScenarioLog log)
    {
        using var w = new World("released");
        var (held, committing, holder, release) = HoldUntilAfterCommitStarts(w);
        var watch = new Stopwatch();

        var result = w.Apply(log, TimeSpan.FromSeconds(20), progress: new Reported(p =>
        {
            if (p.Phase != PatchPhase.Committing || committing.IsSet) return;
            watch.Start();
            committing.Set();
        }));
        holder.Join();

        log.Check(result is not null, "apply succeeded");
        log.Check(watch.Elapsed >= release - TimeSpan.FromMilliseconds(100), $"it waited for the release ({watch.ElapsedMilliseconds} ms >= {release.TotalMilliseconds} ms)");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly (hash listing, user file included)");
        log.Check(log.Lines.Any(l => l.Contains($"'{Locked}': layer", StringComparison.Ordinal) && !l.Contains("after 1 attempt(s)", StringComparison.Ordinal)),
            $"'{Locked}' needed more than one attempt and the log names the layer that succeeded");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    public static bool HeldExclusiveForever(ScenarioLog log)
    {
        using var w = new World("forever");
        var before = w.Listing(w.InstallDir);
        // The budget comes from the environment variable here, as a launcher's operator might set it.
        var saved = Environment.GetEnvironmentVariable("PATCHER_FILE_LOCK_TIMEOUT");
        Environment.SetEnvironmentVariable("PATCHER_FILE_LOCK_TIMEOUT", "3s");
        PatcherException? error;
        var watch = Stopwatch.StartNew();
        try
        {
            error = ApplyHolding(w, log, Locked, budget: null);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATCHER_FILE_LOCK_TIMEOUT", saved);
        }

        log.Note($"error: {error?.Code} native={error?.NativeError} path={error?.Path}: {error?.Message}");
        log.Check(error?.Code == PatchErrorCode.FileLocked, "PatcherException FileLocked");
        log.Check(error?.Path == Locked && error.Message.Contains(Locked, StringComparison.Ordinal), $"it names '{Locked}'");
        log.Check(error?.NativeError is 5 or 32 or 33, $"it carries the Win32 error (5, 32 or 33): {error?.NativeError}");
        log.Check(watch.Elapsed >= TimeSpan.FromSeconds(3) && watch.Elapsed < TimeSpan.FromSeconds(15), $"it gave up after the 3 s budget from PATCHER_FILE_LOCK_TIMEOUT ({watch.ElapsedMilliseconds} ms)");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(before), "old version intact: hash listing equal to before");
        // The backup of the locked file is a hard link to it, which cannot be deleted while the lock lasts.
        log.Check(w.Leftovers().All(n => n.StartsWith("backup-", StringComparison.Ordinal)), "no staging area or pending marker left: " + string.Join(",", w.Leftovers()));
        log.Check(Patcher.Status(w.InstallDir).PendingTransactionId is null, "nothing pending: the launcher can try again");

        // The holder closes the file: the next attempt succeeds and removes what the failed one could not.
        var again = w.Apply(log, TimeSpan.FromSeconds(20));
        log.Check(again is not null && w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "after the holder closed the file, the next apply installs the new version exactly");
        log.Check(w.Leftovers().Count == 0, "and leaves no staging, backup or pending marker: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    public static bool HeldWithDeleteSharing(ScenarioLog log)
    {
        using var w = new World("sharedelete");
        var target = w.Install(Locked);
        ApplyResult? result;
        using (var h = new FileStream(target, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
        {
            result = w.Apply(log, TimeSpan.FromSeconds(20));
            // The holder still reads the old content through its handle.
            var buffer = new byte[16];
            h.ReadExactly(buffer);
            log.Check(buffer.AsSpan().SequenceEqual(World.Content("level2-old", 16)), "the open handle still reads the old file");
        }

        log.Check(result is not null, "apply succeeded while the file was held open with delete sharing");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly");
        var layer = log.Lines.FirstOrDefault(l => l.Contains($"replace '{Locked}': layer", StringComparison.Ordinal));
        log.Note("layer used: " + (layer ?? "(none logged)"));
        log.Note("POSIX-semantics rename (layer 0): " + (Patching.IO.FileOps.PosixRenameDeclinedError == 0 ? "not declined" : $"declined with Win32 error {Patching.IO.FileOps.PosixRenameDeclinedError}"));
        log.Check(layer is not null, "the log names the layer that replaced it");
        return !log.Failed;
    }

    /// <summary>
    /// A patch that changes only the case of a directory's and a file's names. Windows (and macOS) compare names without
    /// case, so the new paths are found where the old ones are: the update must apply all the same, and leave the names
    /// spelt as the new version spells them (the next update's base check looks for those). Before that, two rollbacks:
    /// one stopped by a locked old file while the old directory is being emptied, one stopped by a locked placement
    /// after the directory steps. Each must give the old version back exactly, and leave nothing pending.
    /// </summary>
    public static bool CaseOnlyRenames(ScenarioLog log)
    {
        using var w = new World("caserename", CaseRenamedTrees);
        var before = w.Listing(w.InstallDir);
        foreach (var locked in new[] { "Maps/Forest.map", Locked })
        {
            var error = ApplyHolding(w, log, locked, TimeSpan.FromMilliseconds(500));
            log.Check(error?.Code == PatchErrorCode.FileLocked, $"a locked '{locked}' rolled the update back: {error?.Code} {error?.Message}");
            log.Check(w.Listing(w.InstallDir).SequenceEqual(before), $"old version exactly after '{locked}' was locked, 'Maps' and 'Readme.TXT' spelt as before");
            log.Check(Patcher.Status(w.InstallDir).PendingTransactionId is null, "nothing pending");
        }

        var result = w.Apply(log, TimeSpan.FromSeconds(5));

        log.Check(result is not null, "apply succeeded");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly, names spelt as in it");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    /// <summary>
    /// The same patch where the player keeps a file in the directory whose name changes case: the old directory stays
    /// (it holds the player's file) and takes the new files. A rollback after the directory steps must not take it for
    /// the directory the update made. The next update names the new spelling: it must apply over the old one.
    /// </summary>
    public static bool CaseOnlyRenameWithPlayerFile(ScenarioLog log)
    {
        using var w = new World("caseplayer", CaseRenamedTrees);
        World.Write(w.InstallDir, "Maps/custom.map", Encoding.UTF8.GetBytes("the player's map"));
        var before = w.Listing(w.InstallDir);

        var error = ApplyHolding(w, log, Locked, TimeSpan.FromMilliseconds(500));
        log.Check(error?.Code == PatchErrorCode.FileLocked, $"a locked '{Locked}' rolled the update back: {error?.Code} {error?.Message}");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(before), "old version exactly, the player's map included");
        log.Check(Patcher.Status(w.InstallDir).PendingTransactionId is null, "nothing pending");

        var result = w.Apply(log, TimeSpan.FromSeconds(5));

        log.Check(result is not null, "apply succeeded");
        static IEnumerable<string> Folded(IEnumerable<string> listing) => listing.Select(l => l.ToLowerInvariant()).Order(StringComparer.Ordinal);
        var expected = w.NewListing.Append($"maps/custom.map {"the player's map".Length} {Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("the player's map")))}");
        log.Check(Folded(w.Listing(w.InstallDir)).SequenceEqual(Folded(expected)), "the new version's files and the player's map, names compared without case");
        log.Check(File.Exists(w.Install("Maps/custom.map")), "the player's map is where it was");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));

        // The next update names 'maps/desert.map' as the new version spells it; on disk it is 'Maps/desert.map'.
        var next = w.BuildNextPatch("3.0.0", v3 => World.Write(v3, "maps/desert.map", World.Content("desert-3", 6_100)));
        PatcherException? refused = null;
        try
        {
            w.Apply(log, TimeSpan.FromSeconds(5), next);
        }
        catch (PatcherException ex)
        {
            refused = ex;
        }

        log.Check(refused is null, $"the next update applies over the old spelling: {refused?.Code} {refused?.Message}");
        log.Check(File.Exists(w.Install("Maps/custom.map")), "the player's map is still there");
        log.Check(File.ReadAllBytes(w.Install("maps/desert.map")).AsSpan().SequenceEqual(World.Content("desert-3", 6_100)), "the changed map has the new version's content");
        var report = Patcher.Verify(w.InstallDir);
        log.Check(report.Version == "3.0.0" && report.IsIntact, $"Verify: {report.Version}, intact {report.IsIntact} (missing {string.Join(",", report.Missing)}; modified {string.Join(",", report.Modified)})");
        return !log.Failed;
    }

    /// <summary>
    /// The first update of an install Patcher has never touched, with a tampered blob: it is refused while receiving,
    /// after the state directory beside the install was made. A refused patch changes nothing on disk, so that directory
    /// must go too, although Windows will not rename or delete a directory while the lock file inside it is open.
    /// </summary>
    public static bool RefusedFirstPatchLeavesNothing(ScenarioLog log)
    {
        using var w = new World("refusedfirst");
        var blob = Directory.EnumerateFiles(Path.Join(w.PatchDir, "blobs"), "*", SearchOption.AllDirectories).First();
        var bytes = File.ReadAllBytes(blob);
        bytes[0] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        var parent = Path.GetDirectoryName(w.InstallDir)!;
        var before = w.Listing(parent);

        PatcherException? error = null;
        try
        {
            w.Apply(log, TimeSpan.FromSeconds(5));
        }
        catch (PatcherException ex)
        {
            error = ex;
        }

        log.Check(error?.Code == PatchErrorCode.BlobHashMismatch, $"the tampered blob was refused: {error?.Code} {error?.Message}");
        var after = w.Listing(parent);
        log.Check(after.SequenceEqual(before), "the install's parent is byte-identical, no state directory left: " + string.Join(",", after.Except(before)));
        return !log.Failed;
    }

    /// <summary>
    /// <c>patchtool.exe apply</c>, the shipped Windows binary, while another process's handle holds a file the patch
    /// replaces without sharing, then lets go: the child process waits for the release, checks the Ed25519 signature and
    /// installs the new version exactly.
    /// </summary>
    public static bool PatchtoolHeldExclusiveThenReleased(ScenarioLog log)
    {
        using var w = new World("pt-released");
        var (held, committing, holder, release) = HoldUntilAfterCommitStarts(w);
        var watch = new Stopwatch();

        var (exit, output) = w.PatchtoolApply(onLine: line =>
        {
            if (!line.Contains("[committing]", StringComparison.Ordinal) || committing.IsSet) return;
            watch.Start();
            committing.Set();
        });
        holder.Join();

        log.Note(output.TrimEnd());
        log.Check(exit == 0, $"patchtool.exe apply exited 0 (exit {exit})");
        log.Check(committing.IsSet && watch.Elapsed >= release - TimeSpan.FromMilliseconds(100), $"it waited for the release ({watch.ElapsedMilliseconds} ms after the commit began >= {release.TotalMilliseconds} ms)");
        log.Check(output.Contains($"'{Locked}': layer", StringComparison.Ordinal) && !output.Contains($"'{Locked}': layer 0 succeeded after 1 attempt(s)", StringComparison.Ordinal),
            $"'{Locked}' needed more than one attempt and the log names the layer that succeeded");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly (hash listing, user file included)");
        log.Check(w.Leftovers().Count == 0, "no staging or backup left: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    /// <summary>
    /// <c>patchtool.exe apply</c> while the file stays held for longer than the lock budget (PATCHER_FILE_LOCK_TIMEOUT=3s in
    /// the child's environment): exit 4 with FileLocked naming the file, the old version intact; once the holder lets go, the
    /// next run installs the new version.
    /// </summary>
    public static bool PatchtoolHeldExclusiveForever(ScenarioLog log)
    {
        using var w = new World("pt-forever");
        var before = w.Listing(w.InstallDir);
        var budget = new Dictionary<string, string> { ["PATCHER_FILE_LOCK_TIMEOUT"] = "3s" };
        int exit;
        string output;
        using (new FileStream(w.Install(Locked), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            (exit, output) = w.PatchtoolApply(budget);

        log.Note(output.TrimEnd());
        log.Check(exit == 4, $"patchtool.exe apply exited 4, an install problem (exit {exit})");
        log.Check(output.Contains("patchtool: error FileLocked (", StringComparison.Ordinal) && output.Contains(Locked, StringComparison.Ordinal), $"stderr says FileLocked and names '{Locked}'");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(before), "old version intact: hash listing equal to before");

        var (again, againOutput) = w.PatchtoolApply(budget);
        log.Check(again == 0, $"after the holder closed the file, patchtool.exe apply exits 0 (exit {again}): {againOutput.Trim().Split('\n')[^1]}");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "and installs the new version exactly");
        log.Check(w.Leftovers().Count == 0, "no staging, backup or pending marker left: " + string.Join(",", w.Leftovers()));
        return !log.Failed;
    }

    /// <summary><c>patchtool.exe apply</c> while the file is held open with delete sharing: replaced at once, the holder keeps reading the old bytes.</summary>
    public static bool PatchtoolHeldWithDeleteSharing(ScenarioLog log)
    {
        using var w = new World("pt-sharedelete");
        int exit;
        string output;
        using (var h = new FileStream(w.Install(Locked), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
        {
            (exit, output) = w.PatchtoolApply();
            var buffer = new byte[16];
            h.ReadExactly(buffer);
            log.Check(buffer.AsSpan().SequenceEqual(World.Content("level2-old", 16)), "the open handle still reads the old file");
        }

        log.Note(output.TrimEnd());
        log.Check(exit == 0, $"patchtool.exe apply exited 0 while the file was held open with delete sharing (exit {exit})");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(w.NewListing), "install equals the new version exactly");
        return !log.Failed;
    }

    /// <summary>
    /// A patch signed by another key than the one <c>patchtool.exe apply</c> is told to trust: refused (exit 3,
    /// SignatureInvalid) with the install untouched. The Windows build checks signatures; it does not merely carry them.
    /// </summary>
    public static bool PatchtoolWrongKeyRefused(ScenarioLog log)
    {
        using var w = new World("pt-wrongkey");
        var before = w.Listing(w.InstallDir);
        var other = Path.Join(Path.GetDirectoryName(w.PatchDir)!, "other.pub");
        File.WriteAllText(other, SigningKeys.Generate().PublicPem);

        var (exit, output) = World.Patchtool(null, "apply", "--patch", w.PatchDir, "--target", w.InstallDir, "--trust", other);

        log.Note(output.TrimEnd());
        log.Check(exit == 3 && output.Contains("patchtool: error SignatureInvalid (111)", StringComparison.Ordinal), $"refused with exit 3, SignatureInvalid (exit {exit})");
        log.Check(w.Listing(w.InstallDir).SequenceEqual(before), "install unchanged");
        return !log.Failed;
    }

    /// <summary>
    /// Opens <see cref="Locked"/> without sharing on a thread of its own, and keeps it open until 1.5 s after
    /// <c>committing</c> is set (at the latest 60 s): the apply reaches the file while it is held, whatever its start-up costs.
    /// </summary>
    private static (ManualResetEventSlim Held, ManualResetEventSlim Committing, Thread Holder, TimeSpan Release) HoldUntilAfterCommitStarts(World w)
    {
        var target = w.Install(Locked);
        var release = TimeSpan.FromMilliseconds(1500);
        var held = new ManualResetEventSlim();
        var committing = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            using var h = new FileStream(target, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            held.Set();
            committing.Wait(TimeSpan.FromSeconds(60));
            Thread.Sleep(release);
        });
        holder.Start();
        held.Wait();
        return (held, committing, holder, release);
    }

    private static void CaseRenamedTrees(string v1, string v2)
    {
        World.Write(v1, "Maps/Forest.map", World.Content("forest-old", 5_000));
        World.Write(v1, "Maps/Desert.map", World.Content("desert", 6_000));
        World.Write(v1, "Readme.TXT", World.Content("readme", 700));
        World.Write(v2, "maps/forest.map", World.Content("forest-new", 5_100));
        World.Write(v2, "maps/desert.map", World.Content("desert", 6_000));
        World.Write(v2, "readme.txt", World.Content("readme", 700));
    }

    /// <summary>Applies while another handle holds <paramref name="rel"/> without sharing; returns the error, if any.</summary>
    private static PatcherException? ApplyHolding(World w, ScenarioLog log, string rel, TimeSpan? budget)
    {
        using var h = new FileStream(w.Install(rel), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        try
        {
            w.Apply(log, budget);
            return null;
        }
        catch (PatcherException ex)
        {
            return ex;
        }
    }

    public static string? WineVersion()
    {
        if (!OperatingSystem.IsWindows()) return null;
        try
        {
            return WineNative.Version();
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }
}

/// <summary>
/// An old and a new tree, a patch between them signed with a fresh Ed25519 key, and an install (old tree plus a user
/// file).
/// </summary>
internal sealed class World : IDisposable
{
    private readonly string _root;
    private readonly string _privateKey;

    /// <param name="name">Names the scenario's folder.</param>
    /// <param name="more">Writes more files into the old and the new tree (<see cref="Write"/>), before the patch is built.</param>
    public World(string name, Action<string, string>? more = null)
    {
        _root = Path.Join(Path.GetTempPath(), "patcher-wine", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        var oldTree = Path.Join(_root, "v1");
        var newTree = Path.Join(_root, "v2");
        more?.Invoke(oldTree, newTree);
        Write(oldTree, "game.exe", Encoding.UTF8.GetBytes("engine v1"));
        Write(oldTree, "data/level1.pak", Content("level1", 40_000));
        Write(oldTree, "data/level2.pak", Content("level2-old", 20_000));
        Write(oldTree, "data/old-only.txt", Encoding.UTF8.GetBytes("removed in v2"));
        Write(newTree, "game.exe", Encoding.UTF8.GetBytes("engine v2"));
        Write(newTree, "data/level1.pak", Content("level1", 40_000));
        Write(newTree, "data/level2.pak", Content("level2-new", 21_000));
        Write(newTree, "data/level3.pak", Content("level3", 30_000));
        (_privateKey, PublicKey) = SigningKeys.Generate();
        PublicKeyPath = Path.Join(_root, SigningKeys.PublicKeyFileName);
        File.WriteAllText(PublicKeyPath, PublicKey);
        PatchDir = Path.Join(_root, "patch");
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = oldTree,
            ToDir = newTree,
            OutDir = PatchDir,
            Product = "wine-game",
            Version = "2.0.0",
            FromVersion = "1.0.0",
            PrivateKeyPem = _privateKey,
            // The scenarios tamper with a blob; they test the commit's Windows semantics, the same for both formats.
            Format = 1,
        });
        InstallDir = Path.Join(_root, "parent", "game");
        Copy(oldTree, InstallDir);
        Write(InstallDir, "saves/slot1.sav", Encoding.UTF8.GetBytes("user save"));
        var expected = Path.Join(_root, "expected");
        Copy(newTree, expected);
        Write(expected, "saves/slot1.sav", Encoding.UTF8.GetBytes("user save"));
        NewListing = Listing(expected);
    }

    public string InstallDir { get; }
    public string PatchDir { get; }
    public string PublicKey { get; }
    public string PublicKeyPath { get; }
    public IReadOnlyList<string> NewListing { get; }

    public string Install(string rel) => Path.Join(InstallDir, rel.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>
    /// Builds a patch from the new version to a next one: the new tree copied, then changed by <paramref name="change"/>.
    /// Returns the patch's directory, for <see cref="Apply(ScenarioLog, TimeSpan?, string?)"/>.
    /// </summary>
    public string BuildNextPatch(string version, Action<string> change)
    {
        var next = Path.Join(_root, "v-" + version);
        Copy(Path.Join(_root, "v2"), next);
        change(next);
        var patch = Path.Join(_root, "patch-" + version);
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = Path.Join(_root, "v2"),
            ToDir = next,
            OutDir = patch,
            Product = "wine-game",
            Version = version,
            FromVersion = "2.0.0",
            PrivateKeyPem = _privateKey,
            Format = 1,
        });
        return patch;
    }

    /// <summary>Layered apply through the front door, the Ed25519 signature checked against the world's public key.</summary>
    public ApplyResult? Apply(ScenarioLog log, TimeSpan? budget, string? patchDir = null, IProgress<PatchProgress>? progress = null)
    {
        var options = new PatcherOptions { Strategy = CommitStrategy.Layered, Logger = log, FileLockTimeout = budget, TrustedKeys = [PublicKey] };
        var result = Patcher.ApplyAsync(InstallDir, patchDir ?? PatchDir, options, progress).GetAwaiter().GetResult();
        // The old files are deleted in the background. Deleting a backup that is a hard link of a file still installed
        // (kept by an earlier rolled-back attempt) opens that file for deletion, and the checks below read it without
        // sharing delete: waiting here, as patchtool does before it exits, keeps them from racing that deletion.
        result.Cleanup.GetAwaiter().GetResult();
        return result;
    }

    /// <summary>
    /// Runs the published <c>patchtool.exe</c> (path in PATCHTOOL_EXE) with <paramref name="args"/>; returns its exit code
    /// and what it wrote. <paramref name="environment"/> is added to the child's environment.
    /// </summary>
    public static (int Exit, string Output) Patchtool(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        Patchtool(environment, null, args);

    /// <summary>As above; <paramref name="onLine"/> sees each line the child writes, as it writes it.</summary>
    public static (int Exit, string Output) Patchtool(IReadOnlyDictionary<string, string>? environment, Action<string>? onLine, params string[] args)
    {
        var exe = Environment.GetEnvironmentVariable("PATCHTOOL_EXE");
        if (string.IsNullOrEmpty(exe) || !File.Exists(exe))
            throw new InvalidOperationException($"PATCHTOOL_EXE must name the published patchtool.exe (is '{exe}')");
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        var lines = new ConcurrentQueue<string>();
        void Received(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            var line = e.Data.TrimEnd('\r');
            lines.Enqueue(line);
            onLine?.Invoke(line);
        }

        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += Received;
        process.ErrorDataReceived += Received;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        return (process.ExitCode, string.Join('\n', lines));
    }

    /// <summary><c>patchtool.exe apply</c> of the world's patch, layered, trusting the world's key.</summary>
    public (int Exit, string Output) PatchtoolApply(IReadOnlyDictionary<string, string>? environment = null, Action<string>? onLine = null) =>
        Patchtool(environment, onLine, "apply", "--verbose", "--patch", PatchDir, "--target", InstallDir, "--trust", PublicKeyPath, "--strategy", "layered");

    /// <summary>Staging or backup areas, or a pending marker, left in the state directory.</summary>
    public List<string> Leftovers()
    {
        var state = Path.Join(Path.GetDirectoryName(InstallDir)!, ".game.patcher");
        return !Directory.Exists(state) ? [] : Directory.EnumerateFileSystemEntries(state).Select(p => Path.GetFileName(p)!)
            .Where(n => n.StartsWith("staging-", StringComparison.Ordinal) || n.StartsWith("backup-", StringComparison.Ordinal) || n == "pending").ToList();
    }

    /// <summary>
    /// Sorted "path size sha256" lines and "path/" for directories: equal listings mean identical trees. The install's
    /// identity marker is Patcher's, not part of any version, and is left out.
    /// </summary>
    public IReadOnlyList<string> Listing(string root)
    {
        var lines = new List<string>();
        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, entry).Replace('\\', '/');
            if (PathRules.IsInstallMarker(rel)) continue;
            if (Directory.Exists(entry)) lines.Add(rel + "/");
            else lines.Add($"{rel} {new FileInfo(entry).Length} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry)))}");
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    public static byte[] Content(string seed, int length)
    {
        var result = new byte[length];
        var block = SHA256.HashData(Encoding.UTF8.GetBytes(seed));
        for (var i = 0; i < length; i++)
        {
            if (i % 32 == 0 && i > 0) block = SHA256.HashData(block);
            result[i] = block[i % 32];
        }

        return result;
    }

    public static void Write(string root, string rel, byte[] content)
    {
        var path = Path.Join(root, rel.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Join(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
