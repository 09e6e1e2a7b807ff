namespace Patching;

/// <summary>Options of <see cref="Patcher.UpdateAsync"/> and <see cref="Patcher.CheckForUpdateAsync"/>.</summary>
public sealed record UpdateOptions
{
    /// <summary>How the new version is verified and committed (trusted keys, strategy, state directory, ...). Keys sign the channel too.</summary>
    public PatcherOptions Apply { get; init; } = new();

    /// <summary>The channel followed. Default <c>stable</c>.</summary>
    public string Channel { get; init; } = "stable";

    /// <summary>Pieces downloaded at once. Default 4.</summary>
    public int MaxParallelDownloads { get; init; } = 4;

    /// <summary>
    /// Whether <see cref="Patcher.RepairAsync"/> hashes every file of the installed version (SHA-256), which finds a byte
    /// changed in place. Default false: each file is compared with the size the journal recorded, which finds a deleted
    /// or truncated file without reading any content.
    /// </summary>
    public bool FullRepair { get; init; }
}

/// <summary>What <see cref="Patcher.CheckForUpdateAsync"/> found.</summary>
/// <param name="InstalledVersion">The version Patcher installed here, or null when none.</param>
/// <param name="LatestVersion">The version the channel points at.</param>
/// <param name="UpdateAvailable">Whether the latest version is newer than the installed one (or nothing is installed).</param>
/// <param name="ChannelExpires">When the channel pointer stops being believed; the store must republish it before then.</param>
public sealed record UpdateCheck(string? InstalledVersion, string LatestVersion, bool UpdateAvailable, DateTimeOffset ChannelExpires);

/// <summary>How <see cref="Patcher.UpdateAsync"/> ended.</summary>
public enum UpdateStatus
{
    /// <summary>The installed version is already the channel's latest; nothing was downloaded or changed.</summary>
    UpToDate,
    /// <summary>The latest version was downloaded and committed.</summary>
    Updated,
    /// <summary>Another process holds the install's lock; the downloaded pieces are kept for the next attempt.</summary>
    Busy,
}

/// <summary>Result of <see cref="Patcher.UpdateAsync"/>.</summary>
/// <param name="Status">How it ended.</param>
/// <param name="FromVersion">The version installed before, when known.</param>
/// <param name="ToVersion">The channel's latest version.</param>
/// <param name="BytesDownloaded">Bytes fetched from the source in this run for the content: compressed pieces, or the delta's manifest, signature and payload (the version's manifest and index, and retries, not counted).</param>
/// <param name="BytesReused">Piece bytes taken from the install, or from an earlier interrupted run, instead of downloaded.</param>
/// <param name="PiecesDownloaded">Pieces fetched from the source in this run.</param>
/// <param name="PiecesReused">Pieces taken from the install or an earlier run.</param>
/// <param name="Apply">The transaction's result, when one ran.</param>
public sealed record UpdateResult(UpdateStatus Status, string? FromVersion, string ToVersion, long BytesDownloaded, long BytesReused,
    int PiecesDownloaded, int PiecesReused, ApplyResult? Apply)
{
    /// <summary>
    /// The installed version the update started from when it went through the store's format 2 deltas (one, or a chain
    /// of them, each its own transaction, together costing fewer bytes than the pieces the install lacked); else null.
    /// </summary>
    public string? DeltaFrom { get; init; }
}

/// <summary>Result of <see cref="Patcher.RepairAsync"/>.</summary>
/// <param name="Version">The installed version, checked and repaired.</param>
/// <param name="Missing">Files of that version that were absent.</param>
/// <param name="Modified">Files whose size (or, with <see cref="UpdateOptions.FullRepair"/>, SHA-256) differed, or that are now a link.</param>
/// <param name="BytesDownloaded">Compressed piece bytes fetched from the source (only the pieces no file of the install still held).</param>
/// <param name="PiecesDownloaded">Pieces fetched from the source.</param>
/// <param name="Apply">The transaction that put the files back, or null when nothing needed repair.</param>
public sealed record RepairResult(string Version, IReadOnlyList<string> Missing, IReadOnlyList<string> Modified, long BytesDownloaded,
    int PiecesDownloaded, ApplyResult? Apply)
{
    /// <summary>Whether anything was missing or modified (and so put back).</summary>
    public bool Repaired => Apply is not null;
}
