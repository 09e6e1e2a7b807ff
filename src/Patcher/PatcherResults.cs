namespace Patching;

/// <summary>Outcome of <see cref="Patcher.Apply"/> that is not an error.</summary>
public enum ApplyStatus
{
    /// <summary>The new version is installed.</summary>
    Applied,
    /// <summary>Another process holds the install's transaction lock; nothing was changed. Try again later.</summary>
    Busy,
}

/// <summary>Result of an apply.</summary>
/// <param name="Status">Applied or busy.</param>
/// <param name="FromVersion">The version installed before (null when unknown or busy).</param>
/// <param name="ToVersion">The version installed now (null when busy).</param>
/// <param name="TransactionId">Journal id of the transaction.</param>
/// <param name="Strategy">The strategy that committed.</param>
/// <param name="Resumed">True when an interrupted staging of the same patch was continued.</param>
/// <param name="FilesWritten">Files whose content was written from blobs.</param>
/// <param name="FilesReused">Files hard-linked or copied from the old version.</param>
/// <param name="BytesWritten">Bytes written from blobs.</param>
public sealed record ApplyResult(
    ApplyStatus Status,
    string? FromVersion,
    string? ToVersion,
    string? TransactionId,
    CommitStrategy Strategy,
    bool Resumed,
    int FilesWritten,
    int FilesReused,
    long BytesWritten)
{
    /// <summary>
    /// Completes when the old version's files are deleted: at once unless <see cref="PatcherOptions.CleanupInBackground"/>
    /// deferred that to a background task. Never faults; a failure is logged and the next Apply retries.
    /// </summary>
    public Task Cleanup { get; init; } = Task.CompletedTask;

    /// <summary>
    /// The player's entries (install-relative paths) that could not be moved into the new version: an immutable or
    /// append-only file, an entry in a directory another user owns. The update completed without them; they are kept,
    /// with the old version's files, in the state directory's <c>unswept-&lt;transaction&gt;</c> folder and never deleted
    /// by Patcher. Empty when every entry came along.
    /// </summary>
    public IReadOnlyList<string> EntriesLeftBehind { get; init; } = [];
}

/// <summary>Phase reported through <see cref="PatchProgress"/>.</summary>
public enum PatchPhase
{
    /// <summary>Checking signature, base and free space.</summary>
    Verifying,
    /// <summary>Building the new version beside the old one.</summary>
    Staging,
    /// <summary>Switching to the new version.</summary>
    Committing,
    /// <summary>Removing the old version.</summary>
    CleaningUp,
    /// <summary>Finished.</summary>
    Done,
    /// <summary>Downloading the pieces of a new version the install does not already hold (bytes are downloaded bytes).</summary>
    Downloading,
}

/// <summary>Progress of a long operation.</summary>
/// <remarks>
/// What a caller receives never goes back: <see cref="Fraction"/> only grows across the whole operation, and within a
/// phase so do <see cref="FilesDone"/> and <see cref="BytesDone"/>. A total may grow within a phase when a step finds
/// more work (staging first receives the patch's blobs, then builds the new version's files, and both count as items).
/// Reports arrive on the library's worker threads, one at a time; a UI should copy the values and redraw on its own
/// thread (<see cref="Progress{T}"/> does that).
/// </remarks>
/// <param name="Phase">The current phase; phases only move forward.</param>
/// <param name="FilesDone">Items (files, blobs, steps) finished in this phase.</param>
/// <param name="FilesTotal">Items known in this phase so far.</param>
/// <param name="BytesDone">Bytes read or written in this phase.</param>
/// <param name="BytesTotal">Bytes this phase expects to read or write; 0 when it counts items only.</param>
public readonly record struct PatchProgress(PatchPhase Phase, int FilesDone, int FilesTotal, long BytesDone, long BytesTotal)
{
    /// <summary>The whole operation's progress, 0 to 1, across every phase; never decreases. 1 only when done.</summary>
    public double Fraction { get; init; }

    /// <summary>The file (or step) being worked on when this was reported, when there is one; a path relative to the install or patch.</summary>
    public string? CurrentItem { get; init; }

    /// <summary>Bytes per second in this phase so far, once it has run long enough to say (0 before, and in phases without bytes).</summary>
    public double BytesPerSecond { get; init; }

    /// <summary>Estimated time left in this phase, from <see cref="BytesPerSecond"/>; null when there is no estimate.</summary>
    public TimeSpan? Remaining { get; init; }
}

/// <summary>What recovery did.</summary>
public enum RecoveryOutcome
{
    /// <summary>No transaction was pending.</summary>
    NothingPending,
    /// <summary>An interrupted transaction was completed: the new version is installed.</summary>
    RolledForward,
    /// <summary>An interrupted transaction was undone: the old version is installed.</summary>
    RolledBack,
    /// <summary>Another process holds the lock (an apply is running); nothing was done.</summary>
    Busy,
}

/// <summary>Result of <see cref="Patcher.Recover"/>.</summary>
/// <param name="Outcome">What recovery did.</param>
/// <param name="TransactionId">The interrupted transaction, if there was one.</param>
/// <param name="InstalledVersion">The version installed now, when the journal was read.</param>
public sealed record RecoveryResult(RecoveryOutcome Outcome, string? TransactionId, string? InstalledVersion)
{
    /// <summary>
    /// Completes when the old files a launcher left behind (it exited before its background cleanup finished) are
    /// deleted: at once when there were none, or unless <see cref="PatcherOptions.CleanupInBackground"/> is on, in
    /// which case the app starts without waiting for them. Never faults.
    /// </summary>
    public Task Cleanup { get; init; } = Task.CompletedTask;
}

/// <summary>What <see cref="Patcher.Status"/> knows about an install.</summary>
/// <param name="Product">Product id of the installed version, if any patch was applied.</param>
/// <param name="InstalledVersion">Installed version according to the journal.</param>
/// <param name="PendingTransactionId">A transaction that needs recovery, if any.</param>
/// <param name="PendingState">How far that transaction got; null when none is pending.</param>
/// <param name="PreviousVersion">The version kept for rollback, if any.</param>
public sealed record InstallStatus(string? Product, string? InstalledVersion, string? PendingTransactionId, PendingPhase? PendingState, string? PreviousVersion)
{
    /// <summary>
    /// True while another process is applying a patch to this install (it holds the transaction lock and has begun to
    /// change things). The pending transaction, if shown, is that apply's, not an interrupted one: do not start another
    /// apply or tell the user the install is broken; wait, or show that an update is running.
    /// </summary>
    public bool UpdateInProgress { get; init; }

    /// <summary>
    /// Set when the journal recorded this version for another directory at this path: the install was deleted and copied
    /// back, or restored from a backup, so what it holds is unknown (<see cref="InstalledVersion"/> is then null). The next
    /// <see cref="Patcher.Apply"/> checks the patch's base files by hash and proceeds when they match.
    /// </summary>
    public string? ReplacedInstallVersion { get; init; }
}

/// <summary>
/// How far a pending transaction got (<see cref="InstallStatus.PendingState"/>), which decides what
/// <see cref="Patcher.Recover"/> does with it (docs/recovery.md, "The recovery decision table").
/// </summary>
public enum PendingPhase
{
    /// <summary>The new version was being staged beside the install, which was not touched: recovery rolls back.</summary>
    Started,
    /// <summary>The new version was staged completely; the switch may or may not have happened: recovery looks at the disk and finishes or undoes it.</summary>
    BackupComplete,
    /// <summary>The new version is in place; only cleaning up remains: recovery finishes it.</summary>
    Patched,
    /// <summary>Layered strategy: a switch that had begun replacing files was being undone file by file: recovery finishes undoing it.</summary>
    RollingBack,
}

/// <summary>Result of <see cref="Patcher.Verify"/>.</summary>
/// <param name="Version">The version checked against.</param>
/// <param name="FilesChecked">How many files were hashed.</param>
/// <param name="Missing">Files of the installed version that are absent.</param>
/// <param name="Modified">Files whose size or hash differs.</param>
public sealed record VerifyReport(string Version, int FilesChecked, IReadOnlyList<string> Missing, IReadOnlyList<string> Modified)
{
    /// <summary>True when every file is present and intact.</summary>
    public bool IsIntact => Missing.Count == 0 && Modified.Count == 0;
}

/// <summary>What <see cref="Patcher.ReadPatchInfo"/> found in a patch, before anything is applied.</summary>
/// <param name="Product">The product the patch is for.</param>
/// <param name="Version">The version it installs.</param>
/// <param name="FromVersion">The version it updates from; null for a full package, which installs over any version.</param>
/// <param name="Created">When the patch was built.</param>
/// <param name="Expires">After this time the patch is refused; null when it never expires.</param>
/// <param name="FilesAdded">Files of the new version that the old one lacks (paths relative to the install, sorted).</param>
/// <param name="FilesChanged">Files whose content changes.</param>
/// <param name="FilesRemoved">Files of the old version the new one drops.</param>
/// <param name="DownloadBytes">Bytes of the patch's blobs as stored: what a launcher downloads.</param>
/// <param name="InstalledBytes">Total size of the new version's files once installed.</param>
/// <param name="SigningKeyIds">Ids of the keys that signed it: those verified when <see cref="SignatureVerified"/>, otherwise those the patch claims.</param>
/// <param name="SignatureVerified">True when the signature was checked against <see cref="PatcherOptions.TrustedKeys"/>.</param>
/// <param name="ManifestSha256">SHA-256 of the manifest: the patch's identity.</param>
public sealed record PatchInfo(
    string Product,
    string Version,
    string? FromVersion,
    DateTimeOffset Created,
    DateTimeOffset? Expires,
    IReadOnlyList<string> FilesAdded,
    IReadOnlyList<string> FilesChanged,
    IReadOnlyList<string> FilesRemoved,
    long DownloadBytes,
    long InstalledBytes,
    IReadOnlyList<string> SigningKeyIds,
    bool SignatureVerified,
    string ManifestSha256)
{
    /// <summary>True for a full package (no <see cref="FromVersion"/>).</summary>
    public bool IsFullPackage => FromVersion is null;

    /// <summary>
    /// True when the patch lists only its changes from <see cref="FromVersion"/> and that version's file list (the
    /// journal's record of the installed version, or <c>base.msgpack</c> beside the patch) was not at hand: the files
    /// are shown as the patch lists them, <see cref="InstalledBytes"/> counts only the added and changed files, and
    /// <see cref="ManifestSha256"/> is the SHA-256 of the signed manifest itself. The signature and the changes are
    /// checked all the same; only applying needs the base.
    /// </summary>
    public bool BaseNeededToApply { get; init; }
}
