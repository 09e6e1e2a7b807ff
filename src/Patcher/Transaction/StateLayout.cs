namespace Patching.Transaction;

/// <summary>
/// Where a transaction keeps its state. It lives beside the install directory on the same volume, because the
/// swap renames the install directory itself and a cross-volume rename is a copy, never atomic.
/// </summary>
internal sealed class StateLayout
{
    public StateLayout(string installDir, string? overrideDir)
    {
        InstallDir = Path.TrimEndingDirectorySeparator(installDir);
        var parent = Path.GetDirectoryName(InstallDir)
            ?? throw new PatcherException(PatchErrorCode.InstallNotFound, "the install directory cannot be a file-system root", installDir);
        StateDir = overrideDir is null
            ? Path.Join(parent, "." + Path.GetFileName(InstallDir) + ".patcher")
            : Path.GetFullPath(overrideDir);
    }

    public string InstallDir { get; }
    public string StateDir { get; }
    public string JournalPath => Path.Join(StateDir, "journal.db");
    public string LockPath => Path.Join(StateDir, "lock");

    /// <summary>
    /// Exists exactly while a transaction may need recovery. Lets <see cref="Patcher.Recover"/> answer
    /// "nothing pending" with one existence check instead of opening the journal.
    /// </summary>
    public string PendingMarkerPath => Path.Join(StateDir, "pending");

    public string PreviousDir => Path.Join(StateDir, "previous");

    public string StagingDir(string txId) => Path.Join(StateDir, "staging-" + txId);

    /// <summary>Where the old tree goes when the exchange must be done as two renames.</summary>
    public string OldDir(string txId) => Path.Join(StateDir, "old-" + txId);

    /// <summary>User files that collided with a file of the new version are kept here, never deleted.</summary>
    public string PreservedDir(string txId) => Path.Join(StateDir, "preserved-" + txId);
}
