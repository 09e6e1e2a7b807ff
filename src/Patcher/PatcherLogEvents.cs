using Microsoft.Extensions.Logging;

namespace Patching;

/// <summary>
/// The event ids Patcher logs the steps a launcher may want to alert on or count with, through
/// <see cref="PatcherOptions.Logger"/>. Ids and names are stable: filter on <see cref="EventId.Id"/> (or the name) rather
/// than on message text, which may change. Other messages carry event id 0.
/// </summary>
public static class PatcherLogEvents
{
    /// <summary>Information: the patch's signature verified; the message names product, versions and key ids.</summary>
    public static readonly EventId PatchVerified = new(1001, nameof(PatchVerified));

    /// <summary>Information: the new version is installed and durable (one per successful apply).</summary>
    public static readonly EventId Installed = new(1002, nameof(Installed));

    /// <summary>Information: an interrupted staging of the same patch is continued rather than restarted.</summary>
    public static readonly EventId StagingResumed = new(1003, nameof(StagingResumed));

    /// <summary>
    /// Information: a large content partly rebuilt by an interrupted apply of the same patch is continued after its
    /// verified prefix instead of being rebuilt from its start; the message names the content and the bytes kept.
    /// </summary>
    public static readonly EventId ContentResumed = new(1005, nameof(ContentResumed));

    /// <summary>Warning: nothing beside the install can be written, so the update's state lives inside it (layered strategy).</summary>
    public static readonly EventId StateInsideInstall = new(1004, nameof(StateInsideInstall));

    /// <summary>Warning: staging failed or was cancelled before the commit and is being rolled back; the old version stays.</summary>
    public static readonly EventId StagingFailed = new(1010, nameof(StagingFailed));

    /// <summary>Error: the layered commit failed part way and every replaced file is being rolled back.</summary>
    public static readonly EventId CommitFailed = new(1011, nameof(CommitFailed));

    /// <summary>
    /// Information (Debug when the first plain attempt worked): which lock layer replaced a file (POSIX rename,
    /// MoveFileEx, after a GC, rename aside) and after how many attempts. A rise in these means files are held open.
    /// </summary>
    public static readonly EventId LayerUsed = new(1020, nameof(LayerUsed));

    /// <summary>Error: a file stayed locked by another process beyond the retry budget; the message names the holders when known.</summary>
    public static readonly EventId FileLocked = new(1021, nameof(FileLocked));

    /// <summary>Warning: recovery found an interrupted transaction and is deciding its fate.</summary>
    public static readonly EventId RecoveryStarted = new(1030, nameof(RecoveryStarted));

    /// <summary>Information: what recovery did (rolled forward, rolled back, nothing pending) and the version installed now.</summary>
    public static readonly EventId RecoveryOutcome = new(1031, nameof(RecoveryOutcome));

    /// <summary>Warning: the journal was unreadable with nothing pending, so it was moved aside and a new one started.</summary>
    public static readonly EventId JournalReset = new(1032, nameof(JournalReset));

    /// <summary>Warning: the old version's files could not be deleted yet (a file was busy); the next Apply or Recover retries.</summary>
    public static readonly EventId CleanupDeferred = new(1040, nameof(CleanupDeferred));
}
