using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>What a commit strategy works with for one install: its file system, state, journal, lock retries and log.</summary>
internal sealed record CommitContext(IFileOps Fs, StateLayout Layout, JournalStore Journal, LockRetry Retry, ILogger Log);

/// <summary>What staging left ready to commit.</summary>
/// <param name="Tx">The transaction, as the commit needs it (the swap adds the staged tree's identity).</param>
/// <param name="Built">The counts of the shadow tree build.</param>
/// <param name="Changed">Files the commit changes in the install.</param>
/// <param name="FilesReused">Files of the new version not written from the patch, for the result.</param>
internal sealed record StagedUpdate(TxRecord Tx, ShadowTree Built, int Changed, int FilesReused);

/// <summary>
/// One way of turning a staged update into the installed version, owning its whole life: what staging it needs,
/// the commit, the bookkeeping after it, rolling back, and recovering an interrupted transaction from the journal
/// and the disk. The apply pipeline runs these steps in order; recovery picks the strategy the journal names
/// (<see cref="CommitStrategies"/>) and calls <see cref="Recover"/>.
/// </summary>
internal interface ICommitStrategy
{
    CommitStrategy Kind { get; }

    /// <summary>Whether the journal's installed row will name a kept previous version once <paramref name="tx"/> is done.</summary>
    bool KeepsPreviousTree(TxRecord tx);

    /// <summary>
    /// Stages the update and makes it ready to commit, up to the last point at which cancelling is honoured. The
    /// install is not changed; on failure the caller rolls back with <see cref="RollBackStarted"/>.
    /// </summary>
    StagedUpdate Stage(ApplySession session);

    /// <summary>Undoes a transaction whose commit has not begun: the install was never touched.</summary>
    void RollBackStarted(TxRecord tx);

    /// <summary>Makes the staged version the install. On failure the install is rolled back before the error leaves.</summary>
    void Commit(ApplySession session, StagedUpdate staged);

    /// <summary>
    /// After the patched row: everything that leaves only the new version and the user's entries, then the done row.
    /// Idempotent. Returns the user's entries that could not be carried into the new version.
    /// </summary>
    IReadOnlyList<string> Finish(TxRecord tx, ApplyPlan? plan);

    /// <summary>Logs (and reports) the finished apply.</summary>
    void ReportInstalled(ApplySession session, StagedUpdate staged);

    /// <summary>Rolls an interrupted transaction forward or back; true when forward.</summary>
    bool Recover(TxRecord tx);

    /// <summary>Undoes a backup-complete transaction whose manifest no longer verifies, wherever its commit had got to.</summary>
    void RollBackUnverified(TxRecord tx);
}

/// <summary>
/// The commit strategies and the names the journal records them by: the one place that maps a transaction's recorded
/// strategy to the code that owns it.
/// </summary>
internal static class CommitStrategies
{
    private const string SwapName = "swap";
    private const string LayeredName = "layered";

    /// <summary>The name the journal records for <paramref name="kind"/>.</summary>
    public static string JournalName(CommitStrategy kind) => kind == CommitStrategy.Swap ? SwapName : LayeredName;

    /// <summary>The strategy a journal row names; anything but the layered name is a swap, as it always was.</summary>
    public static CommitStrategy KindOf(TxRecord tx) => tx.Strategy == LayeredName ? CommitStrategy.Layered : CommitStrategy.Swap;

    public static ICommitStrategy Create(CommitStrategy kind, CommitContext context) =>
        kind == CommitStrategy.Swap ? new SwapStrategy(context) : new LayeredStrategy(context);

    /// <summary>The strategy that owns <paramref name="tx"/>.</summary>
    public static ICommitStrategy For(TxRecord tx, CommitContext context) => Create(KindOf(tx), context);

    /// <summary>
    /// Recovery's roll forward, once <paramref name="strategy"/> has completed the commit of <paramref name="tx"/>: the
    /// patched row (with what is installed now), then the strategy's finish. Returns true (rolled forward).
    /// </summary>
    public static bool RecordRolledForward(ICommitStrategy strategy, CommitContext context, TxRecord tx)
    {
        var journal = context.Journal;
        journal.MarkPatched(tx.Id, InstalledRecord.After(tx.Manifest, tx.ManifestHash, journal.Installed(), strategy.KeepsPreviousTree(tx)),
            InstallIdentity.Establish(context.Fs, context.Layout.InstallDir));
        strategy.Finish(tx, null);
        return true;
    }
}
