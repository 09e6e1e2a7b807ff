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
public readonly record struct PatchProgress(PatchPhase Phase, int FilesDone, int FilesTotal, long BytesDone, long BytesTotal);

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
/// <param name="PendingState">Its journal state.</param>
/// <param name="PreviousVersion">The version kept for rollback, if any.</param>
public sealed record InstallStatus(string? Product, string? InstalledVersion, string? PendingTransactionId, string? PendingState, string? PreviousVersion);

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
