using Microsoft.Extensions.Logging;
using Patching.Commit;
using Patching.IO;
using Patching.Journal;
using Patching.State;

namespace Patching.Recovery;

/// <summary>A staging that a new apply may resume instead of rolling it back: the same patch, by the same strategy.</summary>
internal sealed record ResumeCandidate(string ManifestHash, CommitStrategy Strategy);

/// <summary>
/// Resolves an interrupted transaction: the one the journal names is handed to the commit strategy that recorded it,
/// which rolls it forward or back from the journal and the evidence on disk (docs/recovery.md has the decision table);
/// one the journal does not know is resolved from the pending marker alone. Every step is idempotent, so a crash
/// during recovery is recovered by running recovery again.
/// </summary>
internal static class Recoverer
{
    /// <summary>
    /// Resolves a pending transaction before a new apply. A staging of the same patch that was interrupted
    /// is returned for resumption instead of being discarded.
    /// </summary>
    public static TxRecord? RecoverPending(CommitContext context, RollForwardTrust trust, ResumeCandidate? resume)
    {
        var pending = context.Journal.Pending();
        if (pending is null)
        {
            ResolveWithoutJournalRow(context.Fs, context.Layout, context.Log);
            new SwapStrategy(context).SweepTreesInUse();
            return null;
        }

        if (resume is not null && pending is { State: TxState.Started, Kind: TxKind.Apply } && pending.ManifestHash == resume.ManifestHash &&
            CommitStrategies.KindOf(pending) == resume.Strategy &&
            context.Fs.Stat(context.Layout.StagingDir(pending.Id)).Kind == EntryKind.Directory)
        {
            return pending;
        }

        Recover(context, pending, trust);
        new SwapStrategy(context).SweepTreesInUse();
        return null;
    }

    /// <summary>
    /// Returns true when the transaction was rolled forward, false when rolled back. A transaction is rolled forward only
    /// when <paramref name="trust"/> verifies its stored manifest again (backup-complete is the last state from which it
    /// can still be undone).
    /// </summary>
    public static bool Recover(CommitContext context, TxRecord tx, RollForwardTrust trust)
    {
        var log = context.Log;
        log.LogWarning(PatcherLogEvents.RecoveryStarted, "Recovering transaction {Tx} ({Kind} to {Version}, {Strategy}) found in state {State}", tx.Id, tx.Kind, tx.ToVersion, tx.Strategy, tx.State);
        var strategy = CommitStrategies.For(tx, context);
        if (tx.State == TxState.BackupComplete && trust.Check(tx) is { } untrusted)
        {
            log.LogWarning("The interrupted transaction {Tx} does not verify against the trusted keys ({Reason}); rolling it back", tx.Id, untrusted.Message);
            strategy.RollBackUnverified(tx);
            return false;
        }

        return strategy.Recover(tx);
    }

    /// <summary>
    /// The lock retries recovery uses when the caller has no options to take them from: the default budget, on the
    /// system clock.
    /// </summary>
    public static LockRetry DefaultRetry(IFileOps fs, StateLayout layout, ILogger log) =>
        new(LockRetry.DefaultBudget, TimeProvider.System, log, fs.ReportsWin32Errors) { Root = layout.InstallDir };

    /// <summary>
    /// The pending marker names a transaction the journal does not know: the journal was deleted or replaced
    /// mid-transaction. Without its rows nothing can be rolled forward, so only what is provably safe is done:
    /// an install path emptied by the two-rename switch gets its old tree back, and a leftover staging tree is
    /// renamed <c>orphaned-&lt;tx&gt;</c> rather than deleted (after an exchange it would be the old tree, and
    /// could hold a save written after staging). Then the marker goes.
    /// </summary>
    public static void ResolveWithoutJournalRow(IFileOps fs, StateLayout layout, ILogger log)
    {
        if (!PendingMarker.Exists(fs, layout)) return;
        var txId = PendingMarker.Read(fs, layout);
        if (txId.Length > 0 && txId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            var old = layout.OldDir(txId);
            if (fs.Stat(layout.InstallDir).Kind == EntryKind.Missing && fs.Stat(old).Kind == EntryKind.Directory)
            {
                log.LogWarning("Journal has no record of transaction {Tx}; the install path was empty, restoring the old tree from {Old}", txId, old);
                fs.Rename(old, layout.InstallDir);
                fs.SyncDirectory(Path.GetDirectoryName(layout.InstallDir)!);
                fs.SyncDirectory(layout.StateDir);
            }

            var staging = layout.StagingDir(txId);
            if (fs.Stat(staging).Kind == EntryKind.Directory)
            {
                var orphan = Path.Join(layout.StateDir, "orphaned-" + txId);
                log.LogWarning("Journal has no record of transaction {Tx}; kept its staging tree as {Orphan} (remove it once nothing in it is needed)", txId, orphan);
                fs.Rename(staging, orphan);
                fs.SyncDirectory(layout.StateDir);
            }
        }

        PendingMarker.Remove(fs, layout);
    }
}
