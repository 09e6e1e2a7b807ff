using System.Diagnostics;
using System.Globalization;
using System.Text;
using Patching;

namespace PatchBench;

/// <summary>
/// Runs every section, then prints one report and writes it into docs/benchmarks.md. Every Patcher number is a
/// ratio against a baseline measured in the same run (medians of several runs), because absolute times on a
/// shared machine are unstable.
/// </summary>
internal static class BenchProgram
{
    public static int Run(string[] args)
    {
        BenchOptions o;
        try
        {
            o = BenchOptions.Parse(args);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"bench: {ex.Message}");
            Console.Error.WriteLine(BenchOptions.Usage);
            return 2;
        }

        if (o.Help)
        {
            Console.WriteLine(BenchOptions.Usage);
            return 0;
        }

        if (!OperatingSystem.IsLinux())
        {
            Console.Error.WriteLine("bench: Linux only (it measures the swap strategy, rsync, sha256sum, /proc)");
            return 2;
        }

        var bench = new Bench(o);
        try
        {
            bench.RunAll();
            return 0;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"bench: failed: {ex}");
            return 1;
        }
        finally
        {
            bench.Cleanup();
        }
    }
}

/// <summary>Timings of one in-process apply, in seconds from the call.</summary>
internal sealed record ApplyTiming(double Patched, double Done, double Preflight, double Staging, double Commit, double Cleanup, ApplyResult Result)
{
    /// <summary>Finer split from the engine's log lines: open + signature, then scan + plan + journal begin.</summary>
    public double Signature { get; init; } = double.NaN;
    public double Plan { get; init; } = double.NaN;
    /// <summary>Staging until the engine logs "Staged", then journal backup-complete until Committing.</summary>
    public double StageFiles { get; init; } = double.NaN;
    /// <summary>The part of <see cref="StageFiles"/> until the engine logs "Received" (every blob read, hashed, written and fsynced).</summary>
    public double Receive { get; init; } = double.NaN;
    public double BackupComplete { get; init; } = double.NaN;
    /// <summary>From Apply's return until its background cleanup (deleting the old tree) finished.</summary>
    public double Trash { get; init; } = double.NaN;
}

/// <summary>Timestamps the engine's information log lines (the public ILogger seam), for a finer phase split.</summary>
internal sealed class MarkLogger : Microsoft.Extensions.Logging.ILogger
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(long At, string Message)> _lines = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) _lines.Enqueue((Stopwatch.GetTimestamp(), formatter(state, exception)));
    }

    /// <summary>When the first line starting with <paramref name="prefix"/> and containing <paramref name="contains"/> was logged (0 if never).</summary>
    public long At(string prefix, string contains = "") =>
        _lines.FirstOrDefault(l => l.Message.StartsWith(prefix, StringComparison.Ordinal) && l.Message.Contains(contains, StringComparison.Ordinal)).At;
}

/// <summary>Records when each phase was first reported. Called synchronously from the engine's threads.</summary>
internal sealed class PhaseClock : IProgress<PatchProgress>
{
    private readonly long[] _at = new long[Enum.GetValues<PatchPhase>().Length];

    public void Report(PatchProgress value)
    {
        var i = (int)value.Phase;
        if (Volatile.Read(ref _at[i]) == 0) Interlocked.CompareExchange(ref _at[i], Stopwatch.GetTimestamp(), 0);
    }

    public long At(PatchPhase phase) => Volatile.Read(ref _at[(int)phase]);
}

internal sealed partial class Bench(BenchOptions o)
{
    private const string Product = "bench-game";
    private readonly StringBuilder _notes = new();
    private readonly Stopwatch _wall = Stopwatch.StartNew();
    private string _patchtool = "";
    private Task? _toolReady;
    private string _pubPem = "";
    private string _keyFile = "";
    private List<(string, string)> _machine = [];

    // Results.
    private readonly Samples _swapPatched = new(), _swapDone = new(), _layeredPatched = new(), _layeredDone = new();
    private readonly Samples _linkPatched = new(), _linkDone = new(), _linkStage = new();
    private readonly Samples _phPre = new(), _phStage = new(), _phCommit = new(), _phClean = new(), _phTrash = new();
    private readonly Samples _phSig = new(), _phPlan = new(), _phFiles = new(), _phBackup = new(), _phReceive = new(), _phLinks = new();
    private readonly Samples _baseline = new(), _baselineCopy = new(), _baselineSync = new(), _rsync = new();
    private readonly Samples _verify = new(), _sha = new(), _recover = new(), _version = new(), _recoverInProc = new();
    private string _layeredNote = "";
    private TreePair? _main;
    private long _mainPatchBytes;
    private double _mainBuildSeconds;
    private ApplyResult? _mainResult;
    private (long Rss, double Seconds)? _mainCliApply;
    private (long Rss, double Seconds, double BaselineSeconds, long Bytes, ApplyTiming InProcess)? _big;
    private long _versionRss;
    private readonly List<(int Files, long Bytes, int Written, long WrittenBytes, Samples Patched, Samples Done, Samples Baseline, Samples Layered, long CliRss, long ManifestBytes)> _scaling = [];
    private string? _straceSummary;

    /// <summary>Whether every timed run's directory was placed by ext4 as a top-level one (<see cref="TreeWriter.MakeSpreadingDirectory"/>).</summary>
    private bool _spread;

    private string Placement => _spread
        ? "each run in a directory of its own that ext4 places as a top-level one (`chattr +T` on its parent)."
        : "`chattr +T` was not available: runs share their parent's block group.";

    public void RunAll()
    {
        _spread = TreeWriter.MakeSpreadingDirectory(o.Work);
        _machine = Machine.Describe(o.Work);
        Log($"bench {o.Mode} run in {o.Work}");
#if DEBUG
        Log("WARNING: built in Debug; run with -c Release for meaningful numbers");
        _notes.AppendLine("- WARNING: this run used a Debug build.");
#endif
        if (o.LargeDelta)
        {
            LargeDeltaRun();
            return;
        }

        if (o.Format2)
        {
            Format2Run();
            return;
        }

        if (o.Build)
        {
            BuildRun();
            return;
        }

        if (o.UpdateReal)
        {
            UpdateRealRun();
            return;
        }

        if (o.Update)
        {
            UpdateRun();
            return;
        }

        CheckFreeSpace();
        if (o.PrepareOnly)
        {
            PreparePatchTool();
            var dir = Path.Join(o.Work, "main");
            var (_, patch) = Prepare(dir, TreeGen.Game("main", o.Files, o.TotalBytes, o.ChangePct / 100, o.Seed));
            Log($"old tree {Path.Join(dir, "old")}; new tree {Path.Join(dir, "new")}; patch {patch}; trusted key {Path.ChangeExtension(_keyFile, ".pub")}; patchtool {_patchtool}");
            Log($"an install: cp -al {Path.Join(dir, "old")} DEST (the files the patch changes are then shared with the old tree: copy them for exact numbers)");
            return;
        }

        // Publishing patchtool (several seconds of MSBuild) overlaps with writing the main trees.
        _toolReady = Task.Run(PreparePatchTool);
        var needMain = o.Sections.Overlaps(["apply", "verify", "recover"]);
        var mainDir = Path.Join(o.Work, "main");
        var mainPair = TreeGen.Game("main", o.Files, o.TotalBytes, o.ChangePct / 100, o.Seed);
        var mainGen = needMain ? Generate(mainDir, mainPair) : 0;
        _toolReady.GetAwaiter().GetResult();
        WarmUp();

        if (needMain)
        {
            var pair = mainPair;
            var patch = BuildPatch(mainDir, pair, mainGen, quiet: false);
            _main = pair;
            var verifyInstall = o.Sections.Contains("apply") ? ApplySection(mainDir, pair, patch) : InstallForChecks(mainDir, pair, patch);
            if (o.Strace) StraceApply(mainDir, pair, patch);
            if (o.Sections.Contains("verify")) VerifySection(verifyInstall, pair);
            if (o.Sections.Contains("recover")) RecoverSection(verifyInstall);
            TreeWriter.DeleteTree(mainDir);
        }

        if (o.Sections.Contains("scaling")) ScalingSection();
        if (o.Sections.Contains("memory") && o.BigFileBytes > 0) MemorySection();

        var report = Report();
        Console.WriteLine();
        Console.WriteLine(report);
        if (!o.NoWrite) WriteDoc(report);
    }

    public void Cleanup()
    {
        if (o.Keep)
        {
            Console.Error.WriteLine($"bench: kept {o.Work}");
            return;
        }

        try
        {
            TreeWriter.DeleteTree(o.Work);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"bench: could not delete {o.Work}: {ex.Message}");
        }
    }

    // ---------------------------------------------------------------- setup

    private void CheckFreeSpace()
    {
        long need = 0;
        if (o.Sections.Overlaps(["apply", "verify", "recover"])) need = Math.Max(need, (long)(o.TotalBytes * (1.2 + (5 * o.ChangePct / 100))));
        if (o.Sections.Contains("scaling")) need = Math.Max(need, (long)(o.ScaleTotalBytes * 1.2) + (5 * o.ScaleChangedBytes));
        if (o.Sections.Contains("memory")) need = Math.Max(need, 2 * o.BigFileBytes);
        need += 1L << 30;
        var free = new DriveInfo(o.Work).AvailableFreeSpace;
        Log($"disk: need about {Fmt.Bytes(need)} at peak, {Fmt.Bytes(free)} free");
        if (free < need) throw new InvalidOperationException($"not enough free space in {o.Work}: {Fmt.Bytes(free)} free, about {Fmt.Bytes(need)} needed; use smaller --total-gb / --big-file-gb or --work elsewhere");
    }

    private void PreparePatchTool()
    {
        if (o.PatchTool is not null)
        {
            _patchtool = o.PatchTool;
        }
        else
        {
            var repo = RepoRoot() ?? throw new InvalidOperationException("cannot find the repository (Patcher.sln); pass --patchtool PATH");
            _patchtool = PublishedPatchTool(repo);
        }

        var keyDir = Path.Join(o.Work, "key");
        Proc.Check(_patchtool, ["keygen", "--out", keyDir]);
        _keyFile = Path.Join(keyDir, "signing.key");
        _pubPem = File.ReadAllText(Path.Join(keyDir, "signing.pub"));
    }

    /// <summary>
    /// A Release publish of tools/patchtool (framework-dependent apphost), cached in the temp directory and
    /// republished only when a source of patchtool or the library is newer than the cache.
    /// </summary>
    private string PublishedPatchTool(string repo)
    {
        var cache = Path.Join(Path.GetTempPath(), "patcher-bench-patchtool");
        var stamp = Path.Join(cache, ".published");
        var exe = Path.Join(cache, "patchtool");
        var sources = new[] { Path.Join(repo, "src", "Patcher"), Path.Join(repo, "tools", "patchtool") }
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Concat(Directory.EnumerateFiles(repo, "Directory.*.props"));
        var newest = sources.Max(File.GetLastWriteTimeUtc);
        if (File.Exists(exe) && File.Exists(stamp) && File.GetLastWriteTimeUtc(stamp) >= newest)
        {
            Log($"patchtool: cached Release publish in {cache} is up to date");
            return exe;
        }

        var started = DateTime.UtcNow;
        var sw = Stopwatch.StartNew();
        var r = Proc.Run("dotnet", ["publish", Path.Join(repo, "tools", "patchtool", "patchtool.csproj"), "-c", "Release", "-o", cache, "--nologo", "-v", "q"]);
        if (r.ExitCode == 0 && File.Exists(exe))
        {
            File.WriteAllText(stamp, "");
            File.SetLastWriteTimeUtc(stamp, started < newest ? newest : started);
            Log($"patchtool: published (Release apphost) into {cache} in {Fmt.Seconds(sw.Elapsed.TotalSeconds)}");
            return exe;
        }

        // Someone else's half-written change may break the build; an already built apphost still measures the engine.
        var built = new[] { "Release", "Debug" }.Select(c => Path.Join(repo, "tools", "patchtool", "bin", c, "net10.0", "patchtool")).FirstOrDefault(File.Exists)
            ?? (File.Exists(exe) ? exe : null)
            ?? throw new InvalidOperationException($"dotnet publish of patchtool failed and no built apphost exists:\n{r.Out}\n{r.Err}");
        Log($"WARNING: publishing patchtool failed; using {built}");
        _notes.AppendLine(CultureInfo.InvariantCulture, $"- patchtool could not be published (build broken at the time); {built} was used.");
        return built;
    }

    private static string? RepoRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Join(d.FullName, "Patcher.sln"))) return d.FullName;
            }
        }

        return null;
    }

    /// <summary>JIT and first-use costs out of the way: one small apply of each kind before anything is timed.</summary>
    private void WarmUp()
    {
        var dir = Path.Join(o.Work, "warmup");
        var (pair, patch) = Prepare(dir, TreeGen.Game("warmup", 200, 4 << 20, 0.1, o.Seed + 1), quiet: true);
        var install = Path.Join(dir, "w", "install");
        TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
        ApplyInProcess(install, patch, CommitStrategy.Swap);
        _ = Patcher.Verify(install);
        _ = Patcher.Recover(install);
        TreeWriter.DeleteTree(dir);
    }

    /// <summary>Writes the old and new trees, syncs them, builds the signed patch (uncompressed blobs).</summary>
    private (TreePair Pair, string Patch) Prepare(string dir, TreePair pair, bool quiet = false)
    {
        var gen = Generate(dir, pair);
        return (pair, BuildPatch(dir, pair, gen, quiet));
    }

    private double Generate(string dir, TreePair pair)
    {
        var old = Path.Join(dir, "old");
        var sw = Stopwatch.StartNew();
        _spread &= TreeWriter.MakeSpreadingDirectory(dir);
        TreeWriter.Write(old, pair.Old);
        TreeWriter.WriteNext(old, Path.Join(dir, "new"), pair);
        Proc.SyncFs(dir);
        return sw.Elapsed.TotalSeconds;
    }

    private string BuildPatch(string dir, TreePair pair, double genSeconds, bool quiet)
    {
        _toolReady?.GetAwaiter().GetResult();
        var patch = Path.Join(dir, "patch");
        var sw = Stopwatch.StartNew();
        // Uncompressed: synthetic content is random (like already-compressed game packs), so Brotli would be
        // tried and dropped for every blob; measuring the apply, not the builder.
        Proc.Check(_patchtool, ["build", "--from", Path.Join(dir, "old"), "--to", Path.Join(dir, "new"), "--out", patch, "--key", _keyFile,
            "--product", Product, "--version", "2.0.0", "--from-version", "1.0.0", "--no-compress"]);
        Proc.SyncFs(dir);
        var build = sw.Elapsed.TotalSeconds;
        if (!quiet)
        {
            Log($"{pair.Name}: {Fmt.Count(pair.Old.Count)} files, {Fmt.Bytes(pair.OldBytes)} -> {Fmt.Count(pair.New.Count)} files; " +
                $"patch writes {Fmt.Count(pair.Written.Count)} files, {Fmt.Bytes(pair.WrittenBytes)}; removes {Fmt.Count(pair.Removed.Count)}; " +
                $"generated in {Fmt.Seconds(genSeconds)}, patch built in {Fmt.Seconds(build)}");
        }

        if (pair.Name == "main")
        {
            _mainBuildSeconds = build;
            _mainPatchBytes = DirBytes(patch);
        }

        return patch;
    }

    // ---------------------------------------------------------------- contenders

    private ApplyTiming? ApplyInProcess(string install, string patch, CommitStrategy strategy, bool linkBlobs = false)
    {
        var clock = new PhaseClock();
        var marks = new MarkLogger();
        var options = new PatcherOptions { TrustedKeys = [_pubPem], Strategy = strategy, Logger = marks, LinkPatchBlobs = linkBlobs };
        var start = Stopwatch.GetTimestamp();
        ApplyResult result;
        try
        {
            result = Patcher.ApplyAsync(install, patch, options, clock).GetAwaiter().GetResult();
        }
        catch (PatcherException ex) when (strategy == CommitStrategy.Layered && ex.Message.Contains("not available", StringComparison.OrdinalIgnoreCase))
        {
            _layeredNote = $"Strategy=Layered threw \"{ex.Message}\" (being written by another engineer): reported as n/a.";
            return null;
        }

        var end = Stopwatch.GetTimestamp();
        if (result.Status != ApplyStatus.Applied) throw new InvalidOperationException($"apply returned {result.Status}");
        // The old tree is deleted on a background task after Apply returns; wait for it, so that it does not run
        // into the next contender's timing, and report it separately.
        result.Cleanup.GetAwaiter().GetResult();
        var trashed = Stopwatch.GetTimestamp();
        double S(long a, long b) => a == 0 || b == 0 ? double.NaN : Stopwatch.GetElapsedTime(a, b).TotalSeconds;
        var staging = clock.At(PatchPhase.Staging);
        var committing = clock.At(PatchPhase.Committing);
        var cleaning = clock.At(PatchPhase.CleaningUp);
        // "patched" is reached when the engine reports CleaningUp (the switch and its journal row are durable).
        var patched = cleaning != 0 ? S(start, cleaning) : S(start, end);
        var verified = marks.At("Patch ", "verified");
        var staged = marks.At("Staged ");
        return new ApplyTiming(patched, S(start, end), S(start, staging), S(staging, committing), S(committing, cleaning), S(cleaning, end), result)
        {
            Signature = S(start, verified),
            Plan = S(verified, staging),
            StageFiles = S(staging, staged),
            Receive = S(staging, marks.At("Received ")),
            BackupComplete = S(staged, committing),
            Trash = S(end, trashed),
        };
    }

    /// <summary>The physical minimum: copy only the changed and added files into a copy of the old tree, delete removed ones, sync.</summary>
    private static (double Total, double Copy, double Sync) Baseline(string newRoot, string install, TreePair pair)
    {
        var written = pair.Written;
        var removed = pair.Removed;
        var sw = Stopwatch.StartNew();
        foreach (var f in written)
        {
            var dst = Path.Join(install, f.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(Path.Join(newRoot, f.Path), dst, overwrite: true);
        }

        foreach (var r in removed) File.Delete(Path.Join(install, r));
        var copy = sw.Elapsed.TotalSeconds;
        Proc.SyncFs(install);
        return (sw.Elapsed.TotalSeconds, copy, sw.Elapsed.TotalSeconds - copy);
    }

    private static double Rsync(string newRoot, string install)
    {
        var sw = Stopwatch.StartNew();
        Proc.Check("rsync", ["-a", "--delete", "--delay-updates", newRoot + "/", install + "/"]);
        Proc.SyncFs(install);
        return sw.Elapsed.TotalSeconds;
    }

    // ---------------------------------------------------------------- sections

    private string ApplySection(string dir, TreePair pair, string patch)
    {
        var old = Path.Join(dir, "old");
        var next = Path.Join(dir, "new");
        if (!Proc.Exists("rsync")) throw new InvalidOperationException("rsync is missing: apt-get install -y rsync");
        string[] contenders = ["swap", "swap-link", "layered", "baseline", "rsync"];
        var layeredAvailable = true;
        string? keep = null;
        for (var run = 0; run < o.Runs; run++)
        {
            // Rotate the order so drift on a shared machine does not favour one contender.
            foreach (var c in contenders.Skip(run % contenders.Length).Concat(contenders.Take(run % contenders.Length)))
            {
                if (c == "layered" && !layeredAvailable) continue;
                var parent = Path.Join(dir, $"run-{c}-{run}");
                var install = Path.Join(parent, "install");
                TreeWriter.CloneInstall(old, install, pair);
                Proc.SyncFs(dir);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                string line;
                switch (c)
                {
                    case "swap-link":
                        var tl = ApplyInProcess(install, patch, CommitStrategy.Swap, linkBlobs: true)!;
                        _linkPatched.Add(tl.Patched);
                        _linkDone.Add(tl.Done);
                        _linkStage.Add(tl.Staging);
                        line = $"patched {Fmt.Seconds(tl.Patched)}, done {Fmt.Seconds(tl.Done)} (staging {Fmt.Seconds(tl.Staging)}); {tl.Result.FilesWritten} written, {Fmt.Bytes(tl.Result.BytesWritten)} copied";
                        break;
                    case "swap" or "layered":
                        var t = ApplyInProcess(install, patch, c == "swap" ? CommitStrategy.Swap : CommitStrategy.Layered);
                        if (t is null)
                        {
                            layeredAvailable = false;
                            line = "n/a (not available)";
                            break;
                        }

                        (c == "swap" ? _swapPatched : _layeredPatched).Add(t.Patched);
                        (c == "swap" ? _swapDone : _layeredDone).Add(t.Done);
                        if (c == "swap")
                        {
                            _phPre.Add(t.Preflight);
                            _phStage.Add(t.Staging);
                            _phCommit.Add(t.Commit);
                            _phClean.Add(t.Cleanup);
                            _phTrash.Add(t.Trash);
                            _phSig.Add(t.Signature);
                            _phPlan.Add(t.Plan);
                            _phFiles.Add(t.StageFiles);
                            _phReceive.Add(t.Receive);
                            _phLinks.Add(t.StageFiles - t.Receive);
                            _phBackup.Add(t.BackupComplete);
                            _mainResult = t.Result;
                        }

                        line = $"patched {Fmt.Seconds(t.Patched)}, done {Fmt.Seconds(t.Done)} (signature {Fmt.Seconds(t.Signature)}, plan {Fmt.Seconds(t.Plan)}, files {Fmt.Seconds(t.StageFiles)} of which receiving {Fmt.Seconds(t.Receive)}, backup-complete {Fmt.Seconds(t.BackupComplete)}, commit {Fmt.Seconds(t.Commit)}, cleanup {Fmt.Seconds(t.Cleanup)}; old tree deleted in the background {Fmt.Seconds(t.Trash)} after); " +
                               $"{t.Result.FilesWritten} written, {t.Result.FilesReused} reused";
                        break;
                    case "baseline":
                        var b = Baseline(next, install, pair);
                        _baseline.Add(b.Total);
                        _baselineCopy.Add(b.Copy);
                        _baselineSync.Add(b.Sync);
                        line = $"{Fmt.Seconds(b.Total)} (copy {Fmt.Seconds(b.Copy)}, sync {Fmt.Seconds(b.Sync)})";
                        break;
                    default:
                        var r = Rsync(next, install);
                        _rsync.Add(r);
                        line = Fmt.Seconds(r);
                        break;
                }

                Log($"  run {run + 1}/{o.Runs} {c,-8} {line}");
                if (run == 0 && (c != "layered" || layeredAvailable))
                {
                    var diff = TreeWriter.Compare(install, pair.New);
                    if (diff is not null) throw new InvalidOperationException($"{c} left a wrong tree: {diff}");
                }

                if (c == "swap" && run == o.Runs - 1)
                {
                    keep = install; // Installed by Patcher (journal beside it): used by verify and recover.
                }
                else
                {
                    TreeWriter.DeleteTree(parent);
                }
            }
        }

        if (!layeredAvailable) _notes.AppendLine(CultureInfo.InvariantCulture, $"- {_layeredNote}");

        // The real CLI once, for its peak memory on a many-file patch.
        var cliParent = Path.Join(dir, "cli");
        var cliInstall = Path.Join(cliParent, "install");
        TreeWriter.CloneInstall(old, cliInstall, pair);
        Proc.SyncFs(dir);
        var (res, rss) = Proc.RunWithPeakRss(_patchtool, ["apply", "--patch", patch, "--target", cliInstall, "--trust", Path.ChangeExtension(_keyFile, ".pub"), "--strategy", "swap"], o.Work);
        if (res.ExitCode != 0) throw new InvalidOperationException($"patchtool apply failed: {res.Out}\n{res.Err}");
        _mainCliApply = (rss, res.Elapsed.TotalSeconds);
        Log($"  patchtool apply (CLI): {Fmt.Seconds(res.Elapsed.TotalSeconds)}, peak RSS {Fmt.Bytes(rss)}");
        TreeWriter.DeleteTree(cliParent);
        return keep!;
    }

    /// <summary>When the apply section is skipped, verify and recover still need an install that Patcher installed.</summary>
    private string InstallForChecks(string dir, TreePair pair, string patch)
    {
        var install = Path.Join(dir, "checks", "install");
        TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
        _mainResult = ApplyInProcess(install, patch, CommitStrategy.Swap)!.Result;
        return install;
    }

    private void StraceApply(string dir, TreePair pair, string patch)
    {
        if (!Proc.Exists("strace"))
        {
            Log("strace not installed; --strace skipped");
            return;
        }

        var parent = Path.Join(dir, "strace");
        var install = Path.Join(parent, "install");
        TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
        Proc.SyncFs(dir);
        var summary = Path.Join(o.Work, "strace.txt");
        var r = Proc.Run("strace", ["-f", "-c", "-o", summary, _patchtool, "apply", "--patch", patch, "--target", install, "--trust", Path.ChangeExtension(_keyFile, ".pub"), "--strategy", "swap"]);
        if (r.ExitCode != 0) throw new InvalidOperationException($"strace apply failed: {r.Err}");
        _straceSummary = string.Join('\n', File.ReadLines(summary).Take(28));
        Log("strace -f -c of patchtool apply:\n" + _straceSummary);
        TreeWriter.DeleteTree(parent);
    }

    private void VerifySection(string install, TreePair pair)
    {
        var list = Path.Join(o.Work, "verify-files.lst");
        File.WriteAllText(list, string.Join('\0', pair.New.Select(f => f.Path)) + "\0");
        for (var run = 0; run < Math.Min(o.Runs, 3); run++)
        {
            for (var k = 0; k < 2; k++)
            {
                GC.Collect();
                if ((run + k) % 2 == 0)
                {
                    var sw = Stopwatch.StartNew();
                    var report = Patcher.Verify(install);
                    _verify.Add(sw.Elapsed);
                    if (!report.IsIntact || report.FilesChecked != pair.New.Count)
                        throw new InvalidOperationException($"verify found {report.Missing.Count} missing, {report.Modified.Count} modified, {report.FilesChecked} checked");
                }
                else
                {
                    var r = Proc.Run("sh", ["-c", $"xargs -0 -a '{list}' sha256sum > /dev/null"], install);
                    if (r.ExitCode != 0) throw new InvalidOperationException($"sha256sum failed: {r.Err}");
                    _sha.Add(r.Elapsed);
                }
            }
        }

        Log($"verify: Patcher.Verify {_verify.Describe()}; sha256sum {_sha.Describe()}");
    }

    private void RecoverSection(string install)
    {
        string[] recover = ["recover", "--target", install];
        string[] version = ["--version"];
        for (var i = 0; i < 2; i++)
        {
            Proc.Check(_patchtool, recover);
            Proc.Check(_patchtool, version);
        }

        for (var i = 0; i < o.RecoverRuns; i++)
        {
            foreach (var which in i % 2 == 0 ? new[] { 0, 1 } : [1, 0])
            {
                var r = Proc.Check(_patchtool, which == 0 ? recover : version);
                if (which == 0 && !r.Out.Contains("nothing to recover", StringComparison.Ordinal)) throw new InvalidOperationException($"unexpected recover output: {r.Out}");
                (which == 0 ? _recover : _version).Add(r.Elapsed);
            }
        }

        var (_, rss) = Proc.RunWithPeakRss(_patchtool, version, o.Work);
        _versionRss = rss;

        // In-process cost of the call itself (what an app pays at startup after the runtime is up).
        for (var i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            for (var k = 0; k < 200; k++) _ = Patcher.Recover(install);
            _recoverInProc.Add(sw.Elapsed.TotalSeconds / 200);
        }

        Log($"recover: patchtool recover {_recover.Describe()}; patchtool --version {_version.Describe()}; Patcher.Recover in-process {Fmt.Seconds(_recoverInProc.Median)}");
    }

    /// <summary>Bytes of a patch's manifest, whichever format it was built in.</summary>
    private static long ManifestBytes(string patch) =>
        new FileInfo(Path.Join(patch, File.Exists(Path.Join(patch, "manifest.msgpack")) ? "manifest.msgpack" : "manifest.json")).Length;

    private void ScalingSection()
    {
        var runs = Math.Min(o.Runs, 3);
        foreach (var n in o.ScaleFiles)
        {
            var dir = Path.Join(o.Work, $"scale-{n}");
            var (pair, patch) = Prepare(dir, TreeGen.Scaling($"scale-{n}", n, o.ScaleTotalBytes, o.ScaleChangedFiles, o.ScaleChangedBytes, o.Seed + (ulong)n));
            var patched = new Samples();
            var done = new Samples();
            var baseline = new Samples();
            var layered = new Samples();
            string[] contenders = ["swap", "layered", "baseline"];
            for (var run = 0; run < runs; run++)
            {
                foreach (var c in contenders.Skip(run % contenders.Length).Concat(contenders.Take(run % contenders.Length)))
                {
                    var parent = Path.Join(dir, $"run-{c}-{run}");
                    var install = Path.Join(parent, "install");
                    TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
                    Proc.SyncFs(dir);
                    GC.Collect();
                    if (c == "swap")
                    {
                        var t = ApplyInProcess(install, patch, CommitStrategy.Swap)!;
                        patched.Add(t.Patched);
                        done.Add(t.Done);
                        Log($"  {n} files run {run + 1}/{runs} swap     patched {Fmt.Seconds(t.Patched)}, done {Fmt.Seconds(t.Done)} (preflight {Fmt.Seconds(t.Preflight)}, staging {Fmt.Seconds(t.Staging)}, commit {Fmt.Seconds(t.Commit)}, cleanup {Fmt.Seconds(t.Cleanup)})");
                    }
                    else if (c == "layered")
                    {
                        var t = ApplyInProcess(install, patch, CommitStrategy.Layered)!;
                        layered.Add(t.Patched);
                        Log($"  {n} files run {run + 1}/{runs} layered  patched {Fmt.Seconds(t.Patched)}, done {Fmt.Seconds(t.Done)} (preflight {Fmt.Seconds(t.Preflight)}, staging {Fmt.Seconds(t.Staging)}, commit {Fmt.Seconds(t.Commit)})");
                    }
                    else
                    {
                        var b = Baseline(Path.Join(dir, "new"), install, pair);
                        baseline.Add(b.Total);
                        Log($"  {n} files run {run + 1}/{runs} baseline {Fmt.Seconds(b.Total)}");
                    }

                    TreeWriter.DeleteTree(parent);
                }
            }

            long rss = 0;
            if (n == o.ScaleFiles.Max() && !o.Quick)
            {
                var parent = Path.Join(dir, "cli");
                var install = Path.Join(parent, "install");
                TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
                Proc.SyncFs(dir);
                var (res, peak) = Proc.RunWithPeakRss(_patchtool, ["apply", "--patch", patch, "--target", install, "--trust", Path.ChangeExtension(_keyFile, ".pub"), "--strategy", "swap"], o.Work);
                if (res.ExitCode != 0) throw new InvalidOperationException($"patchtool apply failed: {res.Out}\n{res.Err}");
                rss = peak;
                Log($"  {n} files: patchtool apply (CLI) {Fmt.Seconds(res.Elapsed.TotalSeconds)}, peak RSS {Fmt.Bytes(peak)}, manifest {Fmt.Bytes(ManifestBytes(patch))}");
                TreeWriter.DeleteTree(parent);
            }

            _scaling.Add((n, pair.OldBytes, pair.Written.Count, pair.WrittenBytes, patched, done, baseline, layered, rss, ManifestBytes(patch)));
            if (!o.Keep) TreeWriter.DeleteTree(dir);
        }
    }

    private void MemorySection()
    {
        var dir = Path.Join(o.Work, "big");
        var pair = TreeGen.BigFile(o.BigFileBytes, o.Seed + 7);
        var (_, patch) = Prepare(dir, pair);
        TreeWriter.DeleteTree(Path.Join(dir, "new")); // Keep the disk peak at two copies of the big file.
        var blob = Directory.EnumerateFiles(Path.Join(patch, "blobs"), "*", SearchOption.AllDirectories).MaxBy(f => new FileInfo(f).Length)!;

        // Reference: copying the blob plus sync.
        var copy = Path.Join(dir, "copy.bin");
        Proc.SyncFs(dir);
        var sw = Stopwatch.StartNew();
        File.Copy(blob, copy);
        Proc.SyncFs(dir);
        var baseline = sw.Elapsed.TotalSeconds;
        File.Delete(copy);

        var install = Path.Join(dir, "run", "install");
        TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
        Proc.SyncFs(dir);
        var (r, rss) = Proc.RunWithPeakRss(_patchtool, ["apply", "--patch", patch, "--target", install, "--trust", Path.ChangeExtension(_keyFile, ".pub"), "--strategy", "swap"], o.Work);
        if (r.ExitCode != 0) throw new InvalidOperationException($"patchtool apply of the big file failed: {r.Out}\n{r.Err}");
        var got = new FileInfo(Path.Join(install, "packs", "huge.pak")).Length;
        if (got != o.BigFileBytes) throw new InvalidOperationException($"big file is {got} bytes after apply");
        if (_versionRss == 0) _versionRss = Proc.RunWithPeakRss(_patchtool, ["--version"], o.Work).PeakRssBytes;
        Log($"memory: patchtool apply of one {Fmt.Bytes(o.BigFileBytes)} file: peak RSS {Fmt.Bytes(rss)}, {Fmt.Seconds(r.Elapsed.TotalSeconds)} (cp + sync of the blob {Fmt.Seconds(baseline)})");

        // The same apply in-process, for its phases (where a single large file spends its time).
        TreeWriter.DeleteTree(Path.Join(dir, "run"));
        TreeWriter.CloneInstall(Path.Join(dir, "old"), install, pair);
        Proc.SyncFs(dir);
        GC.Collect();
        var t = ApplyInProcess(install, patch, CommitStrategy.Swap)!;
        _big = (rss, r.Elapsed.TotalSeconds, baseline, o.BigFileBytes, t);
        Log($"  in-process: patched {Fmt.Seconds(t.Patched)}, done {Fmt.Seconds(t.Done)} (signature {Fmt.Seconds(t.Signature)}, plan {Fmt.Seconds(t.Plan)}, files {Fmt.Seconds(t.StageFiles)}, commit {Fmt.Seconds(t.Commit)}, cleanup {Fmt.Seconds(t.Cleanup)})");
        TreeWriter.DeleteTree(dir);
    }

    // ---------------------------------------------------------------- report

    private string Report()
    {
        var sb = new StringBuilder();
        var ic = CultureInfo.InvariantCulture;
        sb.AppendLine(ic, $"### {(o.Quick ? "Quick" : "Full")} run, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC ({Fmt.Seconds(_wall.Elapsed.TotalSeconds)} wall)");
        sb.AppendLine();
        var cmdArgs = string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
        sb.AppendLine(ic, $"Command: `dotnet run -c Release --project tools/bench{(cmdArgs.Length > 0 ? " -- " + cmdArgs : "")}`");
        sb.AppendLine();
        sb.AppendLine("| machine | |");
        sb.AppendLine("|---|---|");
        foreach (var (k, v) in _machine) sb.AppendLine(ic, $"| {k} | {v.Replace("|", "/", StringComparison.Ordinal)} |");
        sb.AppendLine();

        if (_main is not null)
        {
            sb.AppendLine(ic, $"Main tree: {Fmt.Count(_main.Old.Count)} files, {Fmt.Bytes(_main.OldBytes)} (log-normal sizes, {_main.Old.Count(f => f.Path.StartsWith("packs/", StringComparison.Ordinal))} pack files holding 40%); " +
                              $"next version writes {Fmt.Count(_main.Written.Count)} files / {Fmt.Bytes(_main.WrittenBytes)} ({100.0 * _main.WrittenBytes / _main.OldBytes:0.0}% of bytes, " +
                              $"{_main.New.Count(f => !_main.Old.Any(x => x.Path == f.Path))} added), removes {_main.Removed.Count}; " +
                              $"signed patch {Fmt.Bytes(_mainPatchBytes)} uncompressed, built by `patchtool build` in {Fmt.Seconds(_mainBuildSeconds)}. " +
                              $"Medians of {o.Runs} runs, contenders interleaved; page cache warm; `sync -f` before each run; {Placement}");
            sb.AppendLine();
        }

        sb.AppendLine("| measure | Patcher | baseline | ratio | target | met |");
        sb.AppendLine("|---|---|---|---|---|---|");
        var swapVsBase = _swapPatched.Median / _baseline.Median;
        var swapVsRsync = _swapPatched.Median / _rsync.Median;
        if (_swapPatched.Count > 0)
        {
            Row(sb, "Apply (swap) until `patched` vs physical baseline¹", _swapPatched, _baseline, swapVsBase, "≤ 1.3×", swapVsBase <= 1.3);
            Row(sb, "Apply (swap) until `patched` vs `rsync -a --delete --delay-updates` + sync²", _swapPatched, _rsync, swapVsRsync, "< 1.0×", swapVsRsync < 1.0);
            Row(sb, "Apply (swap) until `done` vs physical baseline", _swapDone, _baseline, _swapDone.Median / _baseline.Median, "—", null);
            if (_linkPatched.Count > 0)
            {
                var linkVsBase = _linkPatched.Median / _baseline.Median;
                Row(sb, "Apply (swap, `LinkPatchBlobs`⁴) until `patched` vs physical baseline", _linkPatched, _baseline, linkVsBase, "≤ 1.3×", linkVsBase <= 1.3);
                Row(sb, "Apply (swap, `LinkPatchBlobs`⁴) until `patched` vs rsync + sync", _linkPatched, _rsync, _linkPatched.Median / _rsync.Median, "< 1.0×", _linkPatched.Median < _rsync.Median);
                Row(sb, "Apply (swap, `LinkPatchBlobs`⁴) until `done` vs physical baseline", _linkDone, _baseline, _linkDone.Median / _baseline.Median, "—", null);
            }

            if (_layeredPatched.Count > 0)
            {
                Row(sb, "Apply (layered) until `patched` vs physical baseline", _layeredPatched, _baseline, _layeredPatched.Median / _baseline.Median, "—", null);
                Row(sb, "Apply (layered) until `done` vs physical baseline", _layeredDone, _baseline, _layeredDone.Median / _baseline.Median, "—", null);
            }
            else
            {
                sb.AppendLine(ic, $"| Apply (layered) until `patched` / `done` | n/a³ | {_baseline.Describe()} | n/a | — | — |");
            }

            Row(sb, "rsync + sync vs physical baseline (peer, for scale)", _rsync, _baseline, _rsync.Median / _baseline.Median, "—", null);
        }

        if (_verify.Count > 0)
        {
            var speedup = _sha.Median / _verify.Median;
            sb.AppendLine(ic, $"| Patcher.Verify vs `sha256sum` over the same files (speed-up, {Environment.ProcessorCount} cores) | {_verify.Describe()} | {_sha.Describe()} | {Fmt.Ratio(speedup)} faster | ≥ 1.5× faster | {YesNo(speedup >= 1.5)} |");
        }

        if (_recover.Count > 0)
        {
            var r = _recover.Median / _version.Median;
            Row(sb, "`patchtool recover` on a clean install vs `patchtool --version` (process launch, apphost)", _recover, _version, r, "≤ 1.1×", r <= 1.1);
        }

        if (_big is { } big)
        {
            const long limit = 200_000_000;
            sb.AppendLine(ic, $"| Peak RSS of `patchtool apply` for a patch holding one {Fmt.Bytes(big.Bytes)} file | {Fmt.Bytes(big.Rss)} | `patchtool --version`: {Fmt.Bytes(_versionRss)} | — | ≤ 200 MB | {YesNo(big.Rss <= limit)} |");
        }

        sb.AppendLine();
        if (_swapPatched.Count > 0)
        {
            sb.AppendLine("¹ Physical baseline: copy just the changed and added files from the new tree into a copy of the old tree (`File.Copy`, in-kernel `copy_file_range`), delete the removed ones, then `sync -f` once. Not transactional and not verified: the floor for moving these bytes durably.");
            sb.AppendLine("² `--delete` added so the result equals the new version, as Patcher's does; `sync -f` afterwards, because rsync does not fsync and Patcher does.");
            if (_layeredPatched.Count == 0) sb.AppendLine(ic, $"³ {(_layeredNote.Length > 0 ? _layeredNote : "Layered strategy not measured.")}");
            if (_linkPatched.Count > 0)
                sb.AppendLine(ic, $"⁴ `PatcherOptions.LinkPatchBlobs` (off by default; `patchtool apply --link-blobs`): the patch's uncompressed blobs are hashed where they lie and hard-linked into the install instead of copied, so the new bytes are read once and never written again. The default row above copies them. Staging with links: {Fmt.Seconds(_linkStage.Median)} (median).");
            sb.AppendLine("`patched`: the switch and its journal row are durable (the engine reports CleaningUp); `done`: Apply returned (user files carried over, old tree moved to the trash, journal `done`; the trash is deleted afterwards on a background task, timed separately and awaited before the next run). In-process calls of the public API (`Patcher.ApplyAsync`), after a warm-up apply.");
            sb.AppendLine();
        }

        if (_swapPatched.Count > 0)
        {
            sb.AppendLine("Where the swap apply's time goes (medians; phases from the engine's progress reports):");
            sb.AppendLine();
            sb.AppendLine("| phase | time | share of `done` |");
            sb.AppendLine("|---|---|---|");
            var total = _swapDone.Median;
            var phases = new[]
            {
                ("preflight", _phPre), ("  open patch, parse manifest, verify signature", _phSig), ("  scan install, plan, free space, lock, journal open", _phPlan),
                ("staging", _phStage), ("  blobs received once (read + hashed + written + fsynced), marker, journal begin, directories, hard links, user files, directory fsyncs", _phFiles),
                ("    of which receiving the blobs (read + hashed + written + fsynced)", _phReceive), ("    of which the rest (journal begin, directories, hard links, user files, directory fsyncs)", _phLinks),
                ("  journal backup-complete", _phBackup),
                ("commit: exchange, directory fsyncs, journal `patched`", _phCommit),
                ("cleanup: sweep user files, old tree to the trash, journal `done`, marker", _phClean),
            };
            foreach (var (name, s) in phases)
                sb.AppendLine(ic, $"| {string.Concat(Enumerable.Repeat("&nbsp;&nbsp;", (name.Length - name.TrimStart().Length) / 2))}{(name.StartsWith("  ", StringComparison.Ordinal) ? "– " : "")}{name.Trim()} | {Fmt.Seconds(s.Median)} | {100 * s.Median / total:0}% |");
            sb.AppendLine(ic, $"| after `done`, on a background task: delete the old tree (`ApplyResult.Cleanup`) | {Fmt.Seconds(_phTrash.Median)} | (not in `done`) |");
            sb.AppendLine(ic, $"| physical baseline, for comparison: copy / sync | {Fmt.Seconds(_baselineCopy.Median)} / {Fmt.Seconds(_baselineSync.Median)} | |");
            if (_mainResult is { } mr) sb.AppendLine(ic, $"| (apply wrote {mr.FilesWritten} files / {Fmt.Bytes(mr.BytesWritten)}, reused {mr.FilesReused}) | | |");
            if (_mainCliApply is { } cli) sb.AppendLine(ic, $"| `patchtool apply` of the same patch as a process: time / peak RSS | {Fmt.Seconds(cli.Seconds)} / {Fmt.Bytes(cli.Rss)} | |");
            sb.AppendLine();
        }

        if (_big is { } b2)
        {
            var t = b2.InProcess;
            sb.AppendLine(ic, $"Big file: `patchtool apply` of one {Fmt.Bytes(b2.Bytes)} file took {Fmt.Seconds(b2.Seconds)} as a process; in-process until `patched` {Fmt.Seconds(t.Patched)} " +
                              $"(open and signature {Fmt.Seconds(t.Signature)}; plan {Fmt.Seconds(t.Plan)}; receiving (read + hash + write + fsync, once) and staging the file {Fmt.Seconds(t.StageFiles)}; commit {Fmt.Seconds(t.Commit)}); " +
                              $"`cp` of the blob + sync took {Fmt.Seconds(b2.BaselineSeconds)} (ratio `patched` / cp {Fmt.Ratio(t.Patched / b2.BaselineSeconds)}; one run each).\n");
        }

        if (_recoverInProc.Count > 0)
            sb.AppendLine(ic, $"`Patcher.Recover` in-process on a clean install: {Fmt.Seconds(_recoverInProc.Median)} per call (median of 5 × 200 calls).\n");

        if (_scaling.Count > 0)
        {
            var first = _scaling[0];
            var last = _scaling[^1];
            var growth = last.Patched.Median / first.Patched.Median;
            var perFile = (last.Patched.Median - first.Patched.Median) / (last.Files - first.Files);
            sb.AppendLine(ic, $"Does the cost follow the changed bytes or the size of the install? Installs of {Fmt.Bytes(first.Bytes)} with different file counts; each patch rewrites the same {first.Written} files / {Fmt.Bytes(first.WrittenBytes)}. Medians of {first.Patched.Count} runs.");
            sb.AppendLine();
            if (_scaling.Count < 2)
                sb.AppendLine("Verdict: none (one install size was measured; `--scale-files` needs at least two to compare).");
            else
                sb.AppendLine(ic, $"Verdict: {(growth <= 1.5 ? "**holds**" : "**does not hold**")}: from {Fmt.Count(first.Files)} to {Fmt.Count(last.Files)} files the apply until `patched` grows {growth:0.0}× " +
                              $"(about {perFile * 1e6:0} µs per extra install file: the walk, a hard link and several stats per file, and the manifest grows with the file count), while the physical baseline stays flat. " +
                              $"The layered strategy, which touches only the changed files (and stats the others), grows {last.Layered.Median / first.Layered.Median:0.0}× " +
                              $"(about {(last.Layered.Median - first.Layered.Median) / (last.Files - first.Files) * 1e6:0} µs per extra install file).");
            sb.AppendLine();
            sb.AppendLine("| install files | manifest | apply (swap) until `patched` | until `done` | physical baseline | ratio `patched` / baseline | `patched` per install file | layered until `patched` (ratio to baseline) | `patchtool apply` peak RSS |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var s in _scaling)
                sb.AppendLine(ic, $"| {Fmt.Count(s.Files)} | {Fmt.Bytes(s.ManifestBytes)} | {Fmt.Seconds(s.Patched.Median)} | {Fmt.Seconds(s.Done.Median)} | {Fmt.Seconds(s.Baseline.Median)} | {Fmt.Ratio(s.Patched.Median / s.Baseline.Median)} | {s.Patched.Median / s.Files * 1e6:0} µs | {Fmt.Seconds(s.Layered.Median)} ({Fmt.Ratio(s.Layered.Median / s.Baseline.Median)}) | {(s.CliRss > 0 ? Fmt.Bytes(s.CliRss) : "—")} |");
            sb.AppendLine();
        }

        if (_straceSummary is not null)
        {
            sb.AppendLine("`strace -f -c` of one `patchtool apply` of the main patch:");
            sb.AppendLine();
            sb.AppendLine("```");
            sb.AppendLine(_straceSummary);
            sb.AppendLine("```");
            sb.AppendLine();
        }

        if (_notes.Length > 0)
        {
            sb.AppendLine("Notes:");
            sb.AppendLine();
            sb.Append(_notes);
        }

        return sb.ToString().TrimEnd() + "\n";
    }

    private static void Row(StringBuilder sb, string name, Samples patcher, Samples baseline, double ratio, string target, bool? met) =>
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {patcher.Describe()} | {baseline.Describe()} | {Fmt.Ratio(ratio)} | {target} | {(met is null ? "—" : YesNo(met.Value))} |");

    private static string YesNo(bool met) => met ? "**yes**" : "**no**";

    /// <summary>Replaces this mode's region of docs/benchmarks.md (quick and full runs keep separate regions).</summary>
    private void WriteDoc(string report)
    {
        var path = o.Out ?? (RepoRoot() is { } repo ? Path.Join(repo, "docs", "benchmarks.md") : null);
        if (path is null)
        {
            Log("no repository found; pass --out FILE to write the report");
            return;
        }

        var begin = $"<!-- bench:{o.Mode}:begin (written by tools/bench; edits inside are overwritten) -->";
        var end = $"<!-- bench:{o.Mode}:end -->";
        var region = $"{begin}\n{report}{end}";
        var text = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n\nWritten by `tools/bench`.\n";
        var i = text.IndexOf($"<!-- bench:{o.Mode}:begin", StringComparison.Ordinal);
        var j = text.IndexOf(end, StringComparison.Ordinal);
        text = i >= 0 && j > i ? text[..i] + region + text[(j + end.Length)..] : text.TrimEnd() + "\n\n" + region + "\n";
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        Log($"wrote {path}");
    }

    private void Log(string line)
    {
        var s = $"[{_wall.Elapsed.TotalSeconds,6:0.0}s] {line}";
        Console.WriteLine(s);
    }

    private static long DirBytes(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}
