using Patching.Manifests;

namespace Patching.State;

/// <summary>
/// Where a transaction keeps its state. It lives beside the install directory on the same volume, because the
/// swap renames the install directory itself and a cross-volume rename is a copy, never atomic.
/// </summary>
internal sealed class StateLayout
{
    /// <param name="installDir">Full path of the install directory.</param>
    /// <param name="overrideDir">State directory chosen by the caller, or null for the default beside the install.</param>
    /// <param name="journalDir">
    /// Where the journal and lock live when not in the state directory. Only the power-loss simulation sets it:
    /// its simulated file system holds the trees, while SQLite needs a real file.
    /// </param>
    public StateLayout(string installDir, string? overrideDir, string? journalDir = null)
    {
        InstallDir = Path.TrimEndingDirectorySeparator(installDir);
        var parent = Path.GetDirectoryName(InstallDir)
            ?? throw new PatcherException(PatchErrorCode.InstallNotFound, "the install directory cannot be a file-system root", installDir);
        StateDir = overrideDir is null
            ? Path.Join(parent, "." + Path.GetFileName(InstallDir) + ".patcher")
            : Path.TrimEndingDirectorySeparator(Path.GetFullPath(overrideDir));
        JournalDir = journalDir ?? StateDir;
        // Nothing Patcher does below these two ever passes through a symlink (see FileOps.Confine).
        IO.FileOps.Confine(InstallDir);
        IO.FileOps.Confine(StateDir);
    }

    /// <summary>Name of the state directory inside the install, used when nothing beside it can be written.</summary>
    public const string InsideStateName = PathRules.ReservedStateName;

    public string JournalDir { get; }

    public string InstallDir { get; }
    public string StateDir { get; }
    public string JournalPath => Path.Join(JournalDir, "journal.db");
    public string LockPath => Path.Join(JournalDir, "lock");

    /// <summary>
    /// Exists exactly while a transaction may need recovery. Lets <see cref="Patcher.Recover"/> answer
    /// "nothing pending" with one existence check instead of opening the journal.
    /// </summary>
    public string PendingMarkerPath => Path.Join(StateDir, "pending");

    public string PreviousDir => Path.Join(StateDir, "previous");

    public string StagingDir(string txId) => Path.Join(StateDir, "staging-" + txId);

    /// <summary>Where the old tree goes when the exchange must be done as two renames.</summary>
    public string OldDir(string txId) => Path.Join(StateDir, "old-" + txId);

    /// <summary>Blobs received (read, hashed, written) before a transaction begins; only ever touched under the lock.</summary>
    public string IncomingDir => Path.Join(StateDir, "incoming");

    /// <summary>
    /// Large contents being rebuilt from the base and the patch's deltas, one file per content, continued after a crash
    /// from the progress the journal records (only touched under the lock).
    /// </summary>
    public string PartialDir => Path.Join(StateDir, "partial");

    /// <summary>
    /// Old trees of finished transactions, waiting to be deleted (<c>trash/&lt;tx&gt;</c>, and <c>trash/&lt;tx&gt;-previous</c> for a
    /// kept previous version that a newer one replaced). Nothing in it belongs to any version. One fixed name, so that
    /// <see cref="Patcher.Recover"/> notices a cleanup a launcher did not finish with one more existence check.
    /// </summary>
    public string TrashDir => Path.Join(StateDir, "trash");

    /// <summary>
    /// Eight random hex digits: what makes a transaction id, a trash entry or a refused state directory's name unique
    /// among processes that may pick one at the same second.
    /// </summary>
    public static string RandomTag() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));

    /// <summary>
    /// An old tree kept because some of the player's entries in it could not be moved into the new version (immutable,
    /// or in another user's directory): never deleted by Patcher.
    /// </summary>
    public string UnsweptDir(string txId) => Path.Join(StateDir, "unswept-" + txId);

    /// <summary>
    /// Old trees that a process (a game still running from the old version) used when their transaction finished:
    /// <c>in-use/&lt;tx&gt;</c>, with <c>in-use/&lt;tx&gt;.owned</c> listing what the old version owned. A later Apply or
    /// Recover moves what was written there since into the install and deletes a tree once nobody uses it. One fixed
    /// name, so that Recover notices one with a single existence check.
    /// </summary>
    public string InUseDir => Path.Join(StateDir, "in-use");

    /// <summary>User files that collided with a file of the new version are kept here, never deleted.</summary>
    public string PreservedDir(string txId) => Path.Join(StateDir, "preserved-" + txId);

    /// <summary>True when the state directory is inside the install, so every walk of the install must skip it.</summary>
    public bool IsInsideInstall =>
        string.Equals(Path.GetDirectoryName(StateDir), InstallDir, StringComparison.Ordinal)
        && Path.GetFileName(StateDir) == InsideStateName;

    /// <summary>Whether the install-relative <paramref name="rel"/> is the state directory or below it.</summary>
    public bool IsStatePath(string rel) =>
        IsInsideInstall && (rel == InsideStateName || rel.StartsWith(InsideStateName + "/", StringComparison.Ordinal));
}
