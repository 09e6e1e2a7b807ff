namespace Patching.Journal;

/// <summary>
/// Which journal state may follow which: the table in docs/recovery.md ("Transitions"), and a test keeps the two equal.
/// A new row is always <see cref="TxState.Started"/>; every later advance is checked against this table before the
/// journal changes, so a caller that skips or reverses a step fails instead of recording a state recovery would
/// misread. <see cref="TxState.RollingBack"/> may follow itself: recovery resumes an interrupted layered undo by
/// journaling it again.
/// </summary>
internal static class TxStateMachine
{
    private static readonly Dictionary<TxState, TxState[]> NextStates = new()
    {
        [TxState.Started] = [TxState.BackupComplete, TxState.RolledBack],
        [TxState.BackupComplete] = [TxState.Patched, TxState.RollingBack, TxState.RolledBack],
        [TxState.RollingBack] = [TxState.RollingBack, TxState.RolledBack],
        [TxState.Patched] = [TxState.Done],
        [TxState.Done] = [],
        [TxState.RolledBack] = [],
    };

    /// <summary>Every state with the states that may follow it, in declaration order.</summary>
    public static IEnumerable<(TxState From, IReadOnlyList<TxState> To)> Table =>
        Enum.GetValues<TxState>().Select(s => (s, (IReadOnlyList<TxState>)NextStates[s]));

    public static bool CanAdvance(TxState from, TxState to) => NextStates[from].Contains(to);

    /// <summary>The states from which <paramref name="to"/> may be reached.</summary>
    public static IReadOnlyList<TxState> Before(TxState to) =>
        Enum.GetValues<TxState>().Where(from => CanAdvance(from, to)).ToArray();

    /// <summary>A state no transaction leaves: the transaction is no longer pending.</summary>
    public static bool IsFinal(TxState state) => NextStates[state].Length == 0;
}

/// <summary>
/// A step of the journal's state machine was attempted that the machine does not allow: a bug in Patcher, never a
/// condition of the disk. The journal was not changed by the refused step.
/// </summary>
internal sealed class JournalInvariantException(string message, string journalPath)
    : InvalidOperationException($"{message} (journal '{journalPath}')")
{
    /// <summary>The journal the step was refused in.</summary>
    public string JournalPath { get; } = journalPath;
}
