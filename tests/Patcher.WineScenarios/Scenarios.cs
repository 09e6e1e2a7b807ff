using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;
using Patching.Transaction;

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

internal static class Scenarios
{
    private const string Locked = "data/level2.pak";

    public static bool HeldExclusiveThenReleased(ScenarioLog log)
    {
        using var w = new World("released");
        var target = w.Install(Locked);
        var release = TimeSpan.FromMilliseconds(1500);
        var watch = Stopwatch.StartNew();
        using var held = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            using var h = new FileStream(target, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            held.Set();
            Thread.Sleep(release);
        });
        holder.Start();
        held.Wait();

        var result = w.Apply(log, TimeSpan.FromSeconds(20));
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

/// <summary>An old and a new tree, an unsigned patch between them, and an install (old tree plus a user file).</summary>
internal sealed class World : IDisposable
{
    private readonly string _root;

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
        PatchDir = Path.Join(_root, "patch");
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = oldTree,
            ToDir = newTree,
            OutDir = PatchDir,
            Product = "wine-game",
            Version = "2.0.0",
            FromVersion = "1.0.0",
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
            Format = 1,
        });
        return patch;
    }

    /// <summary>Layered apply through the production engine, minus the signature check (see Program.cs).</summary>
    public ApplyResult? Apply(ScenarioLog log, TimeSpan? budget, string? patchDir = null)
    {
        var options = new PatcherOptions { Strategy = CommitStrategy.Layered, Logger = log, FileLockTimeout = budget };
        var package = PatchPackage.Open(patchDir ?? PatchDir, options.Limits);
        return TransactionEngine.ApplyVerified(new EngineSettings(FileOps.Instance), InstallDir, package, ["unsigned-wine-scenario"], options, null, CancellationToken.None);
    }

    /// <summary>Staging or backup areas, or a pending marker, left in the state directory.</summary>
    public List<string> Leftovers()
    {
        var state = Path.Join(Path.GetDirectoryName(InstallDir)!, ".game.patcher");
        return !Directory.Exists(state) ? [] : Directory.EnumerateFileSystemEntries(state).Select(p => Path.GetFileName(p)!)
            .Where(n => n.StartsWith("staging-", StringComparison.Ordinal) || n.StartsWith("backup-", StringComparison.Ordinal) || n == "pending").ToList();
    }

    /// <summary>Sorted "path size sha256" lines and "path/" for directories: equal listings mean identical trees.</summary>
    public IReadOnlyList<string> Listing(string root)
    {
        var lines = new List<string>();
        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, entry).Replace('\\', '/');
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
