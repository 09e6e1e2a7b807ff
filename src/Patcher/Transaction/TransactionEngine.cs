using System.Globalization;
using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Recovery;
using Patching.Signing;
using Patching.Sources;
using Patching.Staging;

namespace Patching.Transaction;

/// <summary>
/// Drives one transaction: preflight (nothing on disk changes), journal, staging, commit, cleanup.
/// Every step that changes the disk is preceded by the durable journal row that allows it.
/// </summary>
internal static class TransactionEngine
{
    /// <summary>The real file system, wrapped for crash injection when the test hook is armed.</summary>
    internal static EngineSettings Default => new(CrashInjection.Enabled ? new CrashingFileOps(FileOps.Instance) : FileOps.Instance);

    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        Apply(Default, installDir, patchDir, options, progress, ct);

    public static ApplyResult Apply(EngineSettings engine, string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var log = options.Logger;
        var fs = engine.FileSystem;
        var layout = engine.Layout(installDir, options);
        progress?.Report(new PatchProgress(PatchPhase.Verifying, 0, 0, 0, 0));

        // ---- Preflight on the patch alone: nothing on disk is touched until it passes. ----
        RequireInstallDirectory(fs, layout.InstallDir);
        var package = PatchPackage.Open(patchDir, options.Limits);
        if (options.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to apply an unverifiable patch", patchDir);
        IReadOnlyList<string> keyIds;
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            keyIds = package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        package.CheckBlobsPresent();
        var manifest = package.Manifest;
        log.LogInformation("Patch {Product} {From} -> {To} verified (keys {Keys})", manifest.Product, manifest.FromVersion ?? "(full)", manifest.Version, string.Join(",", keyIds));

        var strategy = ChooseStrategy(fs, layout, options.Strategy);
        var stateExisted = fs.Stat(layout.StateDir).Kind == EntryKind.Directory;
        TransactionLock? txLock = null;
        JournalStore? journal = null;
        try
        {
            InstalledRecord? installed = null;
            TxRecord? resumable = null;
            if (stateExisted)
            {
                txLock = TransactionLock.TryAcquire(layout.LockPath);
                if (txLock is null) return Busy(strategy);
                journal = JournalStore.Open(layout.JournalPath, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, log);
                resumable = Recoverer.RecoverPending(fs, layout, journal, log, resumeManifestHash: package.ManifestHash);
                installed = journal.Installed();
            }

            var installedManifest = Preflight(installed, manifest, options);
            var plan = ApplyPlan.Create(fs, layout.InstallDir, manifest, installedManifest, options.VerifyBaseHashes, ct);
            CheckFreeSpace(fs, layout, plan);

            // ---- From here on the disk changes; first the state directory and the journal. ----
            if (!stateExisted)
            {
                fs.CreateDirectory(layout.StateDir);
                fs.SyncDirectory(Path.GetDirectoryName(layout.StateDir)!);
                txLock = TransactionLock.TryAcquire(layout.LockPath);
                if (txLock is null) return Busy(strategy);
                journal = JournalStore.Open(layout.JournalPath, fs.Stat(layout.PendingMarkerPath).Kind != EntryKind.Missing, log);
                resumable = Recoverer.RecoverPending(fs, layout, journal, log, resumeManifestHash: package.ManifestHash);
                if (journal.Installed() is { } raced)
                {
                    // Another applier finished between our checks and our lock: check again against what it installed.
                    installed = raced;
                    installedManifest = Preflight(installed, manifest, options);
                    plan = ApplyPlan.Create(fs, layout.InstallDir, manifest, installedManifest, options.VerifyBaseHashes, ct);
                }
            }

            return strategy switch
            {
                CommitStrategy.Swap => ApplySwap(fs, layout, journal!, package, plan, installed, resumable, keyIds, options, progress, ct),
                _ => throw new PatcherException(PatchErrorCode.IOFailure, $"the {strategy} strategy is not available in this build"),
            };
        }
        finally
        {
            journal?.Dispose();
            txLock?.Dispose();
        }
    }

    private static ApplyResult ApplySwap(IFileOps fs, StateLayout layout, JournalStore journal, PatchPackage package, ApplyPlan plan,
        InstalledRecord? installed, TxRecord? resumable, IReadOnlyList<string> keyIds, PatcherOptions options,
        IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var log = options.Logger;
        var manifest = package.Manifest;
        var resumed = resumable is not null;
        var tx = resumable ?? new TxRecord
        {
            Id = NewTxId(options.TimeProvider),
            Kind = TxKind.Apply,
            Product = manifest.Product,
            FromVersion = installed?.Version ?? manifest.FromVersion,
            ToVersion = manifest.Version,
            ManifestHash = package.ManifestHash,
            Manifest = package.ManifestBytes,
            Signature = package.Envelope is null ? null : System.Text.Encoding.UTF8.GetString(ManifestCodec.SerializeEnvelope(package.Envelope)),
            KeyIds = string.Join(",", keyIds),
            Strategy = "swap",
            State = TxState.Started,
            KeepPrevious = options.KeepPreviousVersion,
        };

        if (!resumed)
        {
            // The marker first: from now on, recovery must look at the journal.
            TreeOps.WriteDurably(fs, layout.PendingMarkerPath, System.Text.Encoding.UTF8.GetBytes(tx.Id));
            journal.Begin(tx);
        }
        else
        {
            log.LogInformation("Resuming interrupted staging of transaction {Tx}", tx.Id);
        }

        var staging = layout.StagingDir(tx.Id);
        var stager = new Stager(fs, journal, log);
        try
        {
            progress?.Report(new PatchProgress(PatchPhase.Staging, 0, plan.Files.Count, 0, plan.BytesToWrite));
            stager.Stage(tx.Id, layout.InstallDir, staging, plan, package, resumed ? journal.Files(tx.Id) : new Dictionary<string, FileRow>(), progress, ct);
            var identity = fs.Stat(staging);
            journal.MarkBackupComplete(tx.Id, identity.Device, identity.Inode);
            // Last point at which cancelling is honoured: after this the switch is one step.
            ct.ThrowIfCancellationRequested();
        }
        catch (Exception ex) when (ex is OperationCanceledException or PatcherException or IOException or UnauthorizedAccessException)
        {
            log.LogWarning("Staging of {Tx} failed ({Reason}); rolling back", tx.Id, ex.Message);
            Recoverer.RollBackStarted(fs, layout, journal, tx.Id, log);
            if (ex is OperationCanceledException)
                throw new PatcherException(PatchErrorCode.Cancelled, "apply was cancelled before commit; the old version is intact", layout.InstallDir, ex);
            throw ex is PatcherException ? ex : NativeErrors.FromException(ex, "stage", staging);
        }

        progress?.Report(new PatchProgress(PatchPhase.Committing, plan.Files.Count, plan.Files.Count, stager.BytesWritten, plan.BytesToWrite));
        var swap = new SwapCommit(fs, layout, log);
        swap.Switch(tx.Id);
        journal.MarkPatched(tx.Id, new InstalledRecord(manifest.Product, manifest.Version, package.ManifestHash, package.ManifestBytes,
            installed?.Version, installed?.Manifest));

        progress?.Report(new PatchProgress(PatchPhase.CleaningUp, plan.Files.Count, plan.Files.Count, stager.BytesWritten, plan.BytesToWrite));
        Recoverer.FinishPatched(fs, layout, journal, tx with { State = TxState.Patched }, log);
        progress?.Report(new PatchProgress(PatchPhase.Done, plan.Files.Count, plan.Files.Count, stager.BytesWritten, plan.BytesToWrite));
        log.LogInformation("Installed {Product} {Version} (transaction {Tx})", manifest.Product, manifest.Version, tx.Id);
        return new ApplyResult(ApplyStatus.Applied, installed?.Version ?? manifest.FromVersion, manifest.Version, tx.Id, CommitStrategy.Swap,
            resumed, stager.FilesWritten, stager.FilesReused, stager.BytesWritten);
    }

    public static RecoveryResult Recover(string installDir, PatcherOptions options) => Recover(Default, installDir, options);

    public static RecoveryResult Recover(EngineSettings engine, string installDir, PatcherOptions options)
    {
        var fs = engine.FileSystem;
        var layout = engine.Layout(installDir, options);
        // The cheap path every app start takes: one existence check.
        if (fs.Stat(layout.PendingMarkerPath).Kind == EntryKind.Missing)
            return new RecoveryResult(RecoveryOutcome.NothingPending, null, null);

        using var txLock = TransactionLock.TryAcquire(layout.LockPath);
        if (txLock is null) return new RecoveryResult(RecoveryOutcome.Busy, null, null);
        using var journal = JournalStore.Open(layout.JournalPath, transactionPending: true, options.Logger);
        var pending = journal.Pending();
        var outcome = RecoveryOutcome.NothingPending;
        if (pending is not null)
        {
            var forward = Recoverer.Recover(fs, layout, journal, pending, options.Logger);
            outcome = forward ? RecoveryOutcome.RolledForward : RecoveryOutcome.RolledBack;
        }
        else
        {
            Recoverer.RemoveMarker(fs, layout);
        }

        return new RecoveryResult(outcome, pending?.Id, journal.Installed()?.Version);
    }

    public static InstallStatus Status(string installDir, PatcherOptions options)
    {
        var layout = new StateLayout(installDir, options.StateDirectory);
        if (!File.Exists(layout.JournalPath)) return new InstallStatus(null, null, null, null, null);
        using var journal = JournalStore.Open(layout.JournalPath, File.Exists(layout.PendingMarkerPath), options.Logger);
        var installed = journal.Installed();
        var pending = journal.Pending();
        var previous = Directory.Exists(layout.PreviousDir) ? installed?.PreviousVersion : null;
        return new InstallStatus(installed?.Product, installed?.Version, pending?.Id, pending?.State, previous);
    }

    public static VerifyReport Verify(string installDir, PatcherOptions options, CancellationToken ct)
    {
        var layout = new StateLayout(installDir, options.StateDirectory);
        if (!File.Exists(layout.JournalPath))
            throw new PatcherException(PatchErrorCode.VerifyFailed, "no version was installed by Patcher here (no journal)", layout.JournalPath);
        Manifest manifest;
        using (var journal = JournalStore.Open(layout.JournalPath, File.Exists(layout.PendingMarkerPath), options.Logger))
        {
            var installed = journal.Installed()
                ?? throw new PatcherException(PatchErrorCode.VerifyFailed, "no version was installed by Patcher here", layout.JournalPath);
            manifest = ManifestCodec.Deserialize(installed.Manifest);
        }

        var missing = new System.Collections.Concurrent.ConcurrentBag<string>();
        var modified = new System.Collections.Concurrent.ConcurrentBag<string>();
        var fs = Default.FileSystem;
        Parallel.ForEach(manifest.Files.OrderByDescending(f => f.Size), new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, f =>
        {
            var path = PathRules.Join(layout.InstallDir, f.Path);
            var info = fs.Stat(path);
            if (info.Kind != EntryKind.File) missing.Add(f.Path);
            else if (info.Size != f.Size || ContentHash.OfFile(fs, path, ct) != f.Sha256) modified.Add(f.Path);
        });
        return new VerifyReport(manifest.Version, manifest.Files.Count,
            missing.Order(StringComparer.Ordinal).ToList(), modified.Order(StringComparer.Ordinal).ToList());
    }

    public static ApplyResult Rollback(string installDir, PatcherOptions options) =>
        Recoverer.RollbackToPrevious(Default.FileSystem, new StateLayout(installDir, options.StateDirectory), options);

    /// <summary>Checks the patch against what the journal says is installed. Returns the installed manifest, if known.</summary>
    private static Manifest? Preflight(InstalledRecord? installed, Manifest manifest, PatcherOptions options)
    {
        if (installed is null) return null;
        if (!string.Equals(installed.Product, manifest.Product, StringComparison.Ordinal))
            throw new PatcherException(PatchErrorCode.WrongProduct, $"patch is for product '{manifest.Product}' but '{installed.Product}' is installed");
        var have = PatchVersion.Parse(installed.Version, "installed version");
        var want = PatchVersion.Parse(manifest.Version, "version");
        if (want <= have && !options.AllowDowngrade)
            throw new PatcherException(PatchErrorCode.NotNewer, $"version {manifest.Version} is not newer than the installed {installed.Version}");
        if (manifest.FromVersion is not null && manifest.FromVersion != installed.Version)
            throw new PatcherException(PatchErrorCode.WrongBaseVersion, $"patch updates from {manifest.FromVersion} but {installed.Version} is installed");
        return ManifestCodec.Deserialize(installed.Manifest);
    }

    private static void RequireInstallDirectory(IFileOps fs, string installDir)
    {
        var kind = fs.Stat(installDir).Kind;
        if (kind == EntryKind.Missing)
            throw new PatcherException(PatchErrorCode.InstallNotFound, $"install directory '{installDir}' does not exist", installDir);
        if (kind != EntryKind.Directory)
            throw new PatcherException(PatchErrorCode.SymlinkEscape, $"install path '{installDir}' is not a plain directory (a symlink or file)", installDir);
    }

    private static CommitStrategy ChooseStrategy(IFileOps fs, StateLayout layout, CommitStrategy requested)
    {
        if (requested == CommitStrategy.Layered) return CommitStrategy.Layered;
        var canSwap = SwapCommit.IsSupported;
        if (requested == CommitStrategy.Swap && !canSwap)
            throw new PatcherException(PatchErrorCode.IOFailure, "the swap strategy needs Linux (directory exchange with identity checks); use auto or layered", layout.InstallDir);
        _ = fs;
        return canSwap ? CommitStrategy.Swap : CommitStrategy.Layered;
    }

    private static void CheckFreeSpace(IFileOps fs, StateLayout layout, ApplyPlan plan)
    {
        var probe = fs.Stat(layout.StateDir).Kind == EntryKind.Directory ? layout.StateDir : Path.GetDirectoryName(layout.InstallDir)!;
        var free = fs.AvailableFreeSpace(probe);
        // Written content plus a margin for directories, journal and file-system overhead.
        var need = plan.BytesToWrite + (plan.Files.Count * 4096L) + (16L << 20);
        if (free < need)
        {
            throw new PatcherException(PatchErrorCode.InsufficientSpace,
                $"{free / (1 << 20)} MiB free beside the install, {need / (1 << 20)} MiB needed to stage the new version", probe);
        }
    }

    private static ApplyResult Busy(CommitStrategy strategy) => new(ApplyStatus.Busy, null, null, null, strategy, false, 0, 0, 0);

    private static string NewTxId(TimeProvider time) =>
        time.GetUtcNow().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
}
