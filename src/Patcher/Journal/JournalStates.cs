namespace Patching.Journal;

/// <summary>
/// Journal states of a transaction (docs/recovery.md, "The state machine"). Which state may follow which is
/// the transition table in TxStateMachine; the text stored in the journal is <see cref="JournalText"/>'s.
/// </summary>
internal enum TxState
{
    Started,
    BackupComplete,
    Patched,
    /// <summary>Layered only: a commit that had started changing files is being undone; recovery must finish undoing it.</summary>
    RollingBack,
    Done,
    RolledBack,
}

/// <summary>What a transaction does: apply a patch, or go back to the kept previous version.</summary>
internal enum TxKind
{
    Apply,
    Rollback,
}

/// <summary>Kinds of steps of a layered commit (<see cref="OpRow.Kind"/>).</summary>
internal enum LayeredOpKind
{
    /// <summary>Move the entry at the path into the backup area (an old file the new version drops, or a user entry in the way).</summary>
    Displace,
    /// <summary>Rename the staged file into place, replacing the old file (backed up first) or filling a free path.</summary>
    Place,
    MakeDir,
    /// <summary>Remove an old directory if it is empty (the user's files keep it alive, as with the swap).</summary>
    RemoveDir,
}

/// <summary>Per-step states of the layered commit: pending → backed-up → replaced.</summary>
internal enum OpState
{
    /// <summary>Planned; the disk may or may not show its effect yet (recovery looks).</summary>
    Pending,
    /// <summary>The old file is preserved in the backup area (hard link or copy), the install is unchanged.</summary>
    BackedUp,
    /// <summary>The step is done and durable.</summary>
    Replaced,
}

/// <summary>State of a per-file row (<see cref="FileRow.State"/>): the only one written is <see cref="Staged"/>.</summary>
internal enum FileState
{
    /// <summary>The staged file is complete, verified and durable; a resumed apply keeps it.</summary>
    Staged,
}

/// <summary>
/// The text each journal value is stored as. These strings are the on-disk format: journals written by earlier
/// builds hold them, so they never change. Only the journal converts; everything else handles the enums.
/// </summary>
internal static class JournalText
{
    public static readonly JournalTextMap<TxState> TxStates = new("transaction state",
        (TxState.Started, "started"), (TxState.BackupComplete, "backup-complete"), (TxState.Patched, "patched"),
        (TxState.RollingBack, "rolling-back"), (TxState.Done, "done"), (TxState.RolledBack, "rolled-back"));

    public static readonly JournalTextMap<TxKind> TxKinds = new("transaction kind", (TxKind.Apply, "apply"), (TxKind.Rollback, "rollback"));

    public static readonly JournalTextMap<LayeredOpKind> OpKinds = new("layered step kind",
        (LayeredOpKind.Displace, "displace"), (LayeredOpKind.Place, "place"), (LayeredOpKind.MakeDir, "mkdir"), (LayeredOpKind.RemoveDir, "rmdir"));

    public static readonly JournalTextMap<OpState> OpStates = new("layered step state",
        (OpState.Pending, "pending"), (OpState.BackedUp, "backed-up"), (OpState.Replaced, "replaced"));

    public static readonly JournalTextMap<FileState> FileStates = new("file state", (FileState.Staged, "staged"));

    public static string ToText(this TxState value) => TxStates.Text(value);

    public static string ToText(this TxKind value) => TxKinds.Text(value);

    public static string ToText(this LayeredOpKind value) => OpKinds.Text(value);

    public static string ToText(this OpState value) => OpStates.Text(value);

    public static string ToText(this FileState value) => FileStates.Text(value);

    /// <summary>The public name of a pending transaction's state; a final state is never pending.</summary>
    public static PendingPhase ToPendingPhase(this TxState state) => state switch
    {
        TxState.Started => PendingPhase.Started,
        TxState.BackupComplete => PendingPhase.BackupComplete,
        TxState.Patched => PendingPhase.Patched,
        TxState.RollingBack => PendingPhase.RollingBack,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "a finished transaction is not pending"),
    };
}

/// <summary>One enum's journal texts, both ways. Every value of <typeparamref name="T"/> has exactly one text.</summary>
internal sealed class JournalTextMap<T> where T : struct, Enum
{
    private readonly Dictionary<T, string> _text = [];
    private readonly Dictionary<string, T> _value = new(StringComparer.Ordinal);
    private readonly string _what;

    public JournalTextMap(string what, params (T Value, string Text)[] pairs)
    {
        _what = what;
        foreach (var (value, text) in pairs)
        {
            _text.Add(value, text);
            _value.Add(text, value);
        }

        if (_text.Count != Enum.GetValues<T>().Length)
            throw new InvalidOperationException($"every {what} needs a journal text");
    }

    /// <summary>Every value with its text, in declaration order.</summary>
    public IEnumerable<(T Value, string Text)> All => Enum.GetValues<T>().Select(v => (v, _text[v]));

    public string Text(T value) => _text[value];

    /// <summary>
    /// The value <paramref name="text"/>, read from the journal at <paramref name="journalPath"/>, stands for. A text
    /// this build does not know was written by another build or is damage: refused as a corrupt journal, never guessed.
    /// </summary>
    public T Parse(string text, string journalPath) =>
        _value.TryGetValue(text, out var value)
            ? value
            : throw new PatcherException(PatchErrorCode.JournalCorrupt,
                $"the journal holds an unknown {_what} '{text}'; it was written by another build of Patcher or is damaged", journalPath);
}
