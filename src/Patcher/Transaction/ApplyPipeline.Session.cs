using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Recovery;
using Patching.Staging;
using Patching.State;

namespace Patching.Transaction;

/// <summary>What opening the state left for the steps after it: whether this apply made the state directory, and which parents.</summary>
internal sealed record OpenedState(bool Created, List<string> MadeParents);

/// <summary>The session step: the state opened under the lock, an interrupted transaction recovered, the install checked and planned.</summary>
internal static partial class ApplyPipeline
{
    /// <summary>
    /// Opens the state (creating it when there is none yet, after the patch and the install passed every check), takes
    /// the lock, recovers what an earlier apply left pending, and sets the session's plan. Null when another process
    /// holds the lock.
    /// </summary>
    private static OpenedState? OpenState(ApplySession session, EngineSettings engine)
    {
        var fs = session.Fs;
        // Whether the state exists is asked of the layout actually used (it may just have moved inside the install).
        var stateExisted = fs.Stat(session.Layout.StateDir).Kind == EntryKind.Directory;
        var unknownInstall = false;
        if (stateExisted)
        {
            if (!Lock(session)) return null;
            RecoverPending(session);
            (session.Installed, unknownInstall) = InstalledHere(session);
        }

        var installedManifest = CheckAgainstInstalled(session.Installed, session.Package.Manifest, session.Options);
        session.Plan = CreatePlan(session, installedManifest, unknownInstall);
        CheckFreeSpace(fs, session.Layout, session.Plan);
        session.Progress?.Report(new PatchProgress(PatchPhase.Verifying, VerifySteps, VerifySteps, 0, 0));
        if (stateExisted) return new OpenedState(false, []);

        // ---- From here on the disk changes; first the state directory and the journal. ----
        var created = CreateState(session, engine, out var madeParents);
        if (!Lock(session)) return null;
        // SQLite fsyncs its file but not the directory entry of a database it just created. (In the
        // power-loss simulation the journal lives on the real disk, outside the simulated file system.)
        if (session.Layout.JournalDir == session.Layout.StateDir) fs.SyncDirectory(session.Layout.StateDir);
        RecoverPending(session);
        var (raced, unknown) = InstalledHere(session);
        if (raced is not null || !created)
        {
            // Another applier made the state directory between our check and our mkdir. It may have finished
            // (check again against what it installed), or crashed, in which case the recovery above may have
            // changed the install since our walk: plan again from the install as it is now.
            session.Installed = raced;
            if (raced is not null) installedManifest = CheckAgainstInstalled(raced, session.Package.Manifest, session.Options);
            session.Plan = CreatePlan(session, installedManifest, unknownInstall || unknown);
        }

        return new OpenedState(created, madeParents);
    }

    /// <summary>
    /// Creates the state directory beside the install, or inside it when nothing beside it can be written (then only
    /// the layered commit works: a swap would rename the directory holding its own state). Returns whether this apply
    /// made it.
    /// </summary>
    private static bool CreateState(ApplySession session, EngineSettings engine, out List<string> madeParents)
    {
        var fs = session.Fs;
        var layout = session.Layout;
        var created = fs.Stat(layout.StateDir).Kind == EntryKind.Missing;
        madeParents = [];
        if (StatePlacement.TryCreateStateDirectory(fs, layout, session.Log) is { } parents) madeParents = parents;
        else
        {
            if (session.Options.Strategy == CommitStrategy.Swap)
                throw new PatcherException(PatchErrorCode.AccessDenied, $"the swap strategy needs a writable directory beside the install ('{layout.StateDir}' cannot be created); use auto or layered", layout.StateDir);
            layout = session.Layout = StatePlacement.Inside(engine, layout.InstallDir);
            session.Strategy = CommitStrategy.Layered;
            session.Log.LogWarning(PatcherLogEvents.StateInsideInstall, "Cannot write beside {Install}; keeping the update's state inside it at {State} (layered strategy)", layout.InstallDir, layout.StateDir);
            created = fs.Stat(layout.StateDir).Kind == EntryKind.Missing;
            fs.CreateDirectory(layout.StateDir);
            fs.SyncDirectory(layout.InstallDir);
        }

        if (created) StateTrust.Restrict(fs, layout.StateDir);
        return created;
    }

    /// <summary>Checks the state is trusted, takes the lock and opens the journal. False when another process holds the lock.</summary>
    private static bool Lock(ApplySession session)
    {
        var (fs, layout) = (session.Fs, session.Layout);
        StateTrust.Require(fs, layout);
        session.Lock = TransactionLock.TryAcquire(layout.LockPath);
        if (session.Lock is null) return false;
        session.Journal = JournalStore.Open(layout.JournalPath, layout.InstallDir, PendingMarker.Exists(fs, layout), session.Log, session.Options.TimeProvider);
        return true;
    }

    /// <summary>Recovers a pending transaction, or keeps an interrupted staging of this same patch for resumption.</summary>
    private static void RecoverPending(ApplySession session)
    {
        var (fs, layout) = (session.Fs, session.Layout);
        var context = new CommitContext(fs, layout, session.OpenJournal, LockRetry.For(fs, session.Options, layout.InstallDir), session.Log);
        // The blobs an interrupted attempt received are of no use (the receive starts afresh, and this apply may not get
        // that far, refused as not newer once the recovery below rolled forward); a power cut may have undone their move
        // to the trash. Deleted before the recovery may remove the marker, after which Recover would not look.
        ReceiveLeftovers.DeleteIncoming(fs, layout);
        session.Resumable = Recoverer.RecoverPending(context, RollForwardTrust.From(session.Options),
            new ResumeCandidate(session.Package.ManifestHash, session.Strategy));
        // Contents rebuilt for a transaction that was committed since (its records went with the patched row) are of no
        // use. Another patch's recorded contents stay until this patch's receive starts: this apply may still be refused
        // before it.
        ReceiveLeftovers.KeepRecordedPartials(fs, layout, session.OpenJournal);
    }

    /// <summary>
    /// What the journal says is installed, unless the install directory is no longer the one it said so of (deleted and
    /// copied back, restored from a backup: <see cref="InstallIdentity"/>). Then the install is unknown, as if Patcher
    /// had never touched it, and the patch's base is checked by hash instead of the journal's version. Not asked while a
    /// transaction is being resumed: mid-update the directory may be the staged one, whose identity the journal records
    /// only at the commit.
    /// </summary>
    private static (InstalledRecord? Installed, bool Unknown) InstalledHere(ApplySession session)
    {
        var journal = session.OpenJournal;
        var installed = journal.Installed();
        if (installed is null || session.Resumed
            || InstallIdentity.Matches(journal.RecordedInstallIdentity(), InstallIdentity.Read(session.Fs, session.Layout.InstallDir))) return (installed, false);
        session.Log.LogWarning("{Install} is not the directory the journal recorded version {Version} for (it was replaced, restored or copied back); treating it as an unknown install and checking the patch's base by hash",
            session.Layout.InstallDir, installed.Version);
        return (null, true);
    }

    /// <summary>Checks the patch against what the journal says is installed. Returns the installed manifest, if known.</summary>
    private static Manifest? CheckAgainstInstalled(InstalledRecord? installed, Manifest manifest, PatcherOptions options)
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

    /// <summary>
    /// The plan, minus the state directory when it lives inside the install (it is never the user's). The base is checked
    /// by hash when the options ask for it, and for an install the journal does not recognise (<paramref name="unknownInstall"/>):
    /// its files are then known only by what they hold.
    /// </summary>
    private static ApplyPlan CreatePlan(ApplySession session, Manifest? installedManifest, bool unknownInstall)
    {
        var layout = session.Layout;
        var input = new PlanInput(layout.InstallDir, session.Package.Manifest, installedManifest) {
            FullHash = session.Options.VerifyBaseHashes || unknownInstall,
            NamesIgnoreCase = VolumeCase.IgnoresCase(session.Fs, layout.InstallDir),
        };
        var plan = ApplyPlan.Create(session.Fs, input, session.Progress, session.Cancellation);
        if (!layout.IsInsideInstall) return plan;
        return new ApplyPlan
        {
            Manifest = plan.Manifest,
            Files = plan.Files,
            UserEntries = plan.UserEntries.Where(e => !layout.IsStatePath(e.Path)).ToList(),
            OldVersionPaths = plan.OldVersionPaths,
            BytesToWrite = plan.BytesToWrite,
            InstallEntries = plan.InstallEntries,
            InstallDir = plan.InstallDir,
        };
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
}
