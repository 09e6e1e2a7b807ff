using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Sources;
using Patching.State;

namespace Patching.Transaction;

/// <summary>
/// Where an install's state lives and which commit strategy can work from there: beside the install on its volume,
/// or inside it (layered only) when nothing beside it can be written or the volume differs. Also makes and removes a
/// state directory for an apply.
/// </summary>
internal static class StatePlacement
{
    /// <summary>
    /// Where the state of this install is: inside it when an earlier layered update had to put it there,
    /// otherwise the configured or default directory beside it. One stat.
    /// </summary>
    public static StateLayout Resolve(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var primary = engine.Layout(installDir, options);
        RequireStateOutsideInstall(primary);
        var inside = Inside(engine, primary.InstallDir);
        return engine.FileSystem.Stat(inside.StateDir).Kind == EntryKind.Directory ? inside : primary;
    }

    /// <summary>
    /// The manifests the journal records for the installed version and for a pending transaction (none when another
    /// applier holds the lock): a patch listing only changes may name either as its base; the apply recovers the pending
    /// one first and checks the patch against the version installed after that. Read under the lock with the journal opened as the apply
    /// opens it, so a refusal leaves the state directory's files as they were.
    /// </summary>
    public static RecordedManifests InstalledManifest(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var fs = engine.FileSystem;
        var none = new RecordedManifests(null, null);
        var layout = Resolve(engine, Path.TrimEndingDirectorySeparator(installDir), options);
        if (fs.Stat(layout.StateDir).Kind != EntryKind.Directory || !File.Exists(layout.JournalPath)) return none;
        StateTrust.Require(fs, layout);
        using var held = TransactionLock.TryAcquire(layout.LockPath);
        if (held is null) return none;
        var pending = PendingMarker.Exists(fs, layout);
        using var journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, pending, options.Logger, options.TimeProvider);
        return new RecordedManifests(journal.Installed()?.Manifest, pending ? journal.Pending()?.Manifest : null);
    }

    public static StateLayout Inside(EngineSettings engine, string installDir) =>
        new(installDir, Path.Join(Path.TrimEndingDirectorySeparator(installDir), StateLayout.InsideStateName), engine.JournalDirectory);

    /// <summary>Refuses, before anything is touched, a configured state directory that overlaps the install (Patcher's own inside one apart).</summary>
    private static void RequireStateOutsideInstall(StateLayout layout)
    {
        if (layout.IsInsideInstall) return;
        var comparison = PathRules.PlatformIgnoresCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        bool Within(string path, string dir) => path.Equals(dir, comparison) || path.StartsWith(dir + Path.DirectorySeparatorChar, comparison);
        if (Within(layout.StateDir, layout.InstallDir) || Within(layout.InstallDir, layout.StateDir))
            throw new PatcherException(PatchErrorCode.StateDirectoryInsideInstall,
                $"the state directory '{layout.StateDir}' overlaps the install '{layout.InstallDir}'; choose one beside it", layout.StateDir);
    }

    public static void RequireInstallDirectory(IFileOps fs, string installDir)
    {
        var kind = fs.Stat(installDir).Kind;
        if (kind == EntryKind.Missing)
            throw new PatcherException(PatchErrorCode.InstallNotFound, $"install directory '{installDir}' does not exist", installDir);
        if (kind == EntryKind.Symlink)
            throw new PatcherException(PatchErrorCode.SymlinkEscape, $"install path '{installDir}' is a symlink, not a plain directory", installDir);
        if (kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.InstallNotADirectory, $"install path '{installDir}' is {(kind == EntryKind.File ? "a file" : "not a directory")}; pass the install's folder", installDir);
    }

    /// <summary>
    /// Swap where it can work; layered otherwise: off Linux, or when the install is a mount point or the configured
    /// state directory is on another device (a rename across devices is a copy). In those two cases nothing beside
    /// the install is on its volume, so the state goes inside it. A state that already exists stays where it is.
    /// </summary>
    public static (CommitStrategy Strategy, bool StateInside) ChooseStrategy(IFileOps fs, StateLayout layout, PatcherOptions options)
    {
        var requested = options.Strategy;
        var inside = layout.IsInsideInstall;
        var otherDevice = !inside && (StateOnOtherDevice(fs, layout) || fs.IsMountPoint(layout.InstallDir));
        if (requested == CommitStrategy.Layered || inside) return (CommitStrategy.Layered, otherDevice);
        if (requested == CommitStrategy.Swap && !SwapCommit.IsSupported)
            throw new PatcherException(PatchErrorCode.IOFailure, "the swap strategy needs Linux (directory exchange with identity checks); use auto or layered", layout.InstallDir);
        if (otherDevice)
        {
            if (requested == CommitStrategy.Swap)
                throw new PatcherException(PatchErrorCode.IOFailure, $"the swap strategy needs the state directory on the install's device; '{layout.InstallDir}' is a mount point or '{layout.StateDir}' is elsewhere", layout.InstallDir);
            options.Logger.LogWarning(PatcherLogEvents.StateInsideInstall, "{Install} is not on the same device as {State}; using the layered strategy with the state inside the install", layout.InstallDir, layout.StateDir);
            return (CommitStrategy.Layered, true);
        }

        return (SwapCommit.IsSupported ? CommitStrategy.Swap : CommitStrategy.Layered, false);
    }

    /// <summary>How often <see cref="RunningProgramPolicy.Wait"/> looks again.</summary>
    internal static readonly TimeSpan RunningProgramsPoll = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Applies <see cref="PatcherOptions.RunningPrograms"/>: refuses, waits for the programs to exit, or moves a swap to
    /// the layered strategy. Runs before anything on disk changes, so a refusal or a cancelled wait leaves nothing.
    /// </summary>
    public static CommitStrategy CheckRunningPrograms(StateLayout layout, PatcherOptions options, CommitStrategy strategy, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        if (options.RunningPrograms == RunningProgramPolicy.Ignore) return strategy;
        var users = RunningPrograms.Using(layout.InstallDir);
        if (options.RunningPrograms == RunningProgramPolicy.Wait && users.Count > 0) users = WaitForPrograms(layout, options, users, progress, ct);
        if (users.Count == 0) return strategy;
        var named = RunningPrograms.Describe(users);
        if (options.RunningPrograms == RunningProgramPolicy.Refuse)
            throw new PatcherException(PatchErrorCode.InstallInUse, $"{users.Count} program(s) are using the install: {named}; close them and apply again", layout.InstallDir);
        if (options.RunningPrograms == RunningProgramPolicy.Wait)
            throw new PatcherException(PatchErrorCode.InstallInUse,
                $"{users.Count} program(s) were still using the install after waiting {options.RunningProgramsWait.TotalSeconds:0.#} s: {named}; close them and apply again", layout.InstallDir);
        if (strategy == CommitStrategy.Swap && options.Strategy == CommitStrategy.Swap)
            throw new PatcherException(PatchErrorCode.InstallInUse, $"the swap strategy was asked for, but {users.Count} program(s) are using the install: {named}", layout.InstallDir);
        if (strategy == CommitStrategy.Swap) options.Logger.LogWarning("Programs are using {Install} ({Programs}); using the layered strategy", layout.InstallDir, named);
        return CommitStrategy.Layered;
    }

    /// <summary>
    /// Looks again every <see cref="RunningProgramsPoll"/> until nobody uses the install or
    /// <see cref="PatcherOptions.RunningProgramsWait"/> has passed on the options' clock; returns who still does.
    /// </summary>
    private static List<ProgramUse> WaitForPrograms(StateLayout layout, PatcherOptions options, List<ProgramUse> users, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var time = options.TimeProvider;
        var started = time.GetTimestamp();
        options.Logger.LogWarning("Waiting up to {Wait} for {Count} program(s) using {Install} to exit: {Programs}",
            options.RunningProgramsWait, users.Count, layout.InstallDir, RunningPrograms.Describe(users));
        while (users.Count > 0)
        {
            var left = options.RunningProgramsWait - time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero) return users;
            progress?.Report(new PatchProgress(PatchPhase.Verifying, ApplyPipeline.VerifySteps - 1, ApplyPipeline.VerifySteps, 0, 0)
            {
                CurrentItem = $"waiting for {users.Count} program(s) to exit: {RunningPrograms.Describe(users)}",
            });
            Task.Delay(left < RunningProgramsPoll ? left : RunningProgramsPoll, time, ct).GetAwaiter().GetResult();
            users = RunningPrograms.Using(layout.InstallDir);
        }

        options.Logger.LogInformation("The programs using {Install} exited after {Waited}; applying", layout.InstallDir, time.GetElapsedTime(started));
        return users;
    }

    /// <summary>Device of the state directory (or its nearest existing ancestor) differs from the install's. Linux only (statx).</summary>
    private static bool StateOnOtherDevice(IFileOps fs, StateLayout layout)
    {
        var install = fs.Stat(layout.InstallDir);
        string? probe = layout.StateDir;
        var info = fs.Stat(probe);
        while (info.Kind == EntryKind.Missing && (probe = Path.GetDirectoryName(probe)) is not null) info = fs.Stat(probe);
        return install.Device != 0 && info.Device != 0 && install.Device != info.Device;
    }

    /// <summary>
    /// Creates the state directory beside the install, or where <see cref="PatcherOptions.StateDirectory"/> says, with
    /// any of its parents that do not exist yet (a launcher's folder on its first run). Each directory made is fsynced
    /// in its parent: the journal is only durable if every name on its path is. Returns the parents made, deepest first;
    /// null when a parent refuses (read-only, no permission), after removing what it made.
    /// </summary>
    public static List<string>? TryCreateStateDirectory(IFileOps fs, StateLayout layout, ILogger log)
    {
        var made = new List<string>(); // outermost first
        try
        {
            TreeOps.CreateDirectoriesDurably(fs, layout.StateDir, made);
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.AccessDenied && !layout.IsInsideInstall)
        {
            log.LogInformation("Cannot create {State}: {Reason}", layout.StateDir, ex.Message);
            made.Reverse();
            RemoveEmptyDirectories(fs, made);
            return null;
        }

        // Made by another applier meanwhile: its entry is synced here too, as the journal is about to live in it.
        if (!made.Remove(layout.StateDir)) fs.SyncDirectory(Path.GetDirectoryName(layout.StateDir)!);
        made.Reverse(); // deepest first, for RemoveEmptyDirectories; the state directory itself goes with RemoveStateDirectory
        return made;
    }

    /// <summary>
    /// Removes a state directory this apply created, for a patch refused before its first journal row. It is renamed
    /// aside while the lock is still held, so a process arriving meanwhile finds no state directory and makes its own,
    /// rather than a half-deleted one (or a new lock file beside ours); then the lock is released and the renamed tree
    /// deleted.
    /// </summary>
    /// <remarks>
    /// Windows refuses to rename a directory while a file in it is open, and our lock file is. There the lock is released
    /// first and the rename tried once more. A process that took the lock in between holds the lock file open, so the
    /// rename is refused again and the directory stays: it is that process's now. One that had only seen the directory
    /// exist and opens the lock after the rename gets an error, not a half-deleted state.
    /// </remarks>
    public static void RemoveStateDirectory(IFileOps fs, StateLayout layout, TransactionLock? txLock, List<string> madeParents)
    {
        var aside = layout.StateDir + ".refused-" + StateLayout.RandomTag();
        try
        {
            fs.Rename(layout.StateDir, aside);
        }
        catch (PatcherException ex) when (txLock is not null && ex.Code is PatchErrorCode.AccessDenied or PatchErrorCode.FileLocked)
        {
            txLock.Dispose();
            txLock = null;
            fs.Rename(layout.StateDir, aside);
        }
        finally
        {
            txLock?.Dispose();
        }

        TreeOps.DeleteTree(fs, aside);
        RemoveEmptyDirectories(fs, madeParents);
    }

    /// <summary>Removes directories this apply made, deepest first, stopping at the first that something else now uses.</summary>
    private static void RemoveEmptyDirectories(IFileOps fs, List<string> made)
    {
        foreach (var dir in made)
        {
            if (fs.ListNames(dir).Any()) return;
            fs.DeleteDirectory(dir);
            fs.SyncDirectory(Path.GetDirectoryName(dir)!);
        }
    }
}
