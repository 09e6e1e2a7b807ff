namespace Patching;

/// <summary>
/// Stable error codes a launcher can switch on. Values are part of the public contract:
/// never renumber, only append.
/// </summary>
public enum PatchErrorCode
{
    /// <summary>Unclassified failure.</summary>
    Unknown = 0,

    // ---- the patch itself (nothing on disk was changed) ----
    /// <summary>The patch directory or its manifest is missing.</summary>
    PatchNotFound = 100,
    /// <summary>The manifest is not valid JSON or violates the format.</summary>
    ManifestMalformed = 101,
    /// <summary>The manifest is larger than the configured limit.</summary>
    ManifestTooLarge = 102,
    /// <summary>The manifest format version is not supported by this build.</summary>
    ManifestUnsupportedFormat = 103,
    /// <summary>The patch carries no signature but trusted keys are configured.</summary>
    SignatureMissing = 110,
    /// <summary>No signature verified against a trusted key.</summary>
    SignatureInvalid = 111,
    /// <summary>Fewer distinct trusted keys signed than the threshold requires.</summary>
    SignatureThresholdNotMet = 112,
    /// <summary>A key file could not be read or has an unsupported algorithm.</summary>
    KeyInvalid = 113,
    /// <summary>The manifest's expiry time has passed.</summary>
    ManifestExpired = 114,
    /// <summary>A path in the manifest is unsafe (traversal, reserved name, duplicate, ...).</summary>
    UnsafePath = 120,
    /// <summary>A declared size or count exceeds the configured limits.</summary>
    LimitExceeded = 121,
    /// <summary>A blob is missing from the patch.</summary>
    BlobMissing = 130,
    /// <summary>A blob's length differs from the declared length.</summary>
    BlobSizeMismatch = 131,
    /// <summary>A blob's content hash differs from the declared hash.</summary>
    BlobHashMismatch = 132,
    /// <summary>A format 2 delta or reused range produced bytes whose SHA-256 differs from the signed one.</summary>
    DeltaOutputMismatch = 133,
    /// <summary>A format 2 delta decodes to more bytes than its operation declares (a decompression bomb is cut off here).</summary>
    DeltaOutputTooLong = 134,
    /// <summary>A format 2 operation reads outside the base file it names, or outside the patch's payload.</summary>
    DeltaReferenceOutsideBase = 135,
    /// <summary>A format 2 delta is not a valid zstd frame, or decodes to fewer bytes than declared.</summary>
    DeltaCorrupt = 136,
    /// <summary>A format 2 delta asks for a decoding window larger than the applier allows (memory bomb).</summary>
    DeltaWindowTooLarge = 137,
    /// <summary>The patch is for another product.</summary>
    WrongProduct = 140,
    /// <summary>The patch is not newer than the installed version (anti-rollback).</summary>
    NotNewer = 141,
    /// <summary>The patch expects another base version than the one installed.</summary>
    WrongBaseVersion = 142,
    /// <summary>
    /// A patch file (manifest, signature or blob) is not a regular file of the declared size: a FIFO, a device, a
    /// directory, a symlink, or a symlink loop where the file should be.
    /// </summary>
    PatchFileNotRegular = 150,
    /// <summary>
    /// The patch lists only the changes from its base version, and that version's manifest is neither what the journal
    /// records as installed nor shipped beside the patch (<c>base.msgpack</c>). Nothing was changed.
    /// </summary>
    BaseManifestMissing = 160,
    /// <summary>
    /// The base version's manifest at hand (the journal's record of the installed version, or <c>base.msgpack</c> beside
    /// the patch) is not the one the patch names by its SHA-256. Nothing was changed.
    /// </summary>
    BaseManifestMismatch = 161,
    /// <summary>
    /// A format 2 delta's reference window lies in a content the patch does not rebuild before it: the content itself,
    /// a later one, or one the manifest does not list. Windows may only name earlier contents, so that no content waits
    /// on itself. Nothing was changed.
    /// </summary>
    DeltaReferenceNotEarlier = 162,

    // ---- updates from a server (nothing in the install was changed) ----
    /// <summary>The update source could not be reached, or kept failing (errors, timeouts, short answers) after its retries.</summary>
    SourceUnavailable = 180,
    /// <summary>The update source does not hold an object the update needs (a channel, a manifest, a piece).</summary>
    SourceObjectMissing = 181,
    /// <summary>A downloaded piece kept hashing differently from the signed manifest after its retries.</summary>
    DownloadCorrupt = 182,
    /// <summary>The channel pointer's expiry has passed (a frozen or replayed pointer).</summary>
    ChannelExpired = 183,
    /// <summary>The channel pointer is older than one already seen, or names a version older than the installed one (a replayed pointer).</summary>
    ChannelRollback = 184,
    /// <summary>The release a channel pointer names does not match it (another manifest hash, product or version).</summary>
    ReleaseMismatch = 185,
    /// <summary>The store already holds that version with other content, or the channel already points at a newer one.</summary>
    ReleaseExists = 186,

    // ---- the install directory ----
    /// <summary>The install directory does not exist.</summary>
    InstallNotFound = 200,
    /// <summary>A file the patch relies on does not match the expected base.</summary>
    BaseMismatch = 201,
    /// <summary>Not enough free space to stage the new version.</summary>
    InsufficientSpace = 202,
    /// <summary>A symlink or junction inside the install would lead outside it.</summary>
    SymlinkEscape = 203,
    /// <summary>Another process holds the transaction lock.</summary>
    Busy = 204,
    /// <summary>A file stayed locked by another process beyond the retry budget.</summary>
    FileLocked = 205,
    /// <summary>Access to a file or directory was denied.</summary>
    AccessDenied = 206,
    /// <summary>The disk filled up.</summary>
    DiskFull = 207,
    /// <summary>A generic I/O error, including a failed fsync.</summary>
    IOFailure = 208,
    /// <summary>The journal is unreadable.</summary>
    JournalCorrupt = 209,
    /// <summary>
    /// Reserved, never raised: a cancelled operation throws <see cref="OperationCanceledException"/> (the old version
    /// is intact). The value stays so that no other meaning is ever given to 210.
    /// </summary>
    [Obsolete("Cancellation throws OperationCanceledException; catch that instead. This code is never raised.")]
    Cancelled = 210,
    /// <summary>No previous version is kept, so rollback is impossible.</summary>
    NothingToRollBack = 211,
    /// <summary>The installed tree does not match the installed manifest.</summary>
    VerifyFailed = 212,
    /// <summary>The state directory's journal belongs to another install that still exists.</summary>
    StateDirectoryInUse = 213,

    // ---- the launcher's view (250-259) ----
    /// <summary>The install path exists but is a file (or another non-directory), not a directory.</summary>
    InstallNotADirectory = 250,
    /// <summary>
    /// Patcher never installed a version here (no journal, or one without an installed version), so there is nothing
    /// to check the files against. Apply a full package first, or use the publisher's own check.
    /// </summary>
    NotManagedByPatcher = 251,

    // ---- hostile environment (220-229) ----
    /// <summary>
    /// The state directory, or its journal, lock, staging, trash or kept previous version, is owned by another user, is
    /// writable by group or others, or is a symlink: whoever controls it could make recovery install their files.
    /// </summary>
    StateDirectoryUntrusted = 220,
    /// <summary>
    /// The configured state directory is inside the install (other than the install's own <c>.patcher</c>), is the
    /// install, or contains it: a swap would move the state with the version, and a walk would take it for the player's.
    /// </summary>
    StateDirectoryInsideInstall = 221,
    /// <summary>Programs are using the install and <see cref="PatcherOptions.RunningPrograms"/> says to refuse.</summary>
    InstallInUse = 222,

    // ---- hostile environment: races with the install's own entries (235-249) ----
    /// <summary>
    /// An entry of the install was replaced while Patcher worked on it: a directory on the way to a file it reuses is
    /// another directory than the one it examined, or the file is another file (of the same name and size). Nothing
    /// was taken from it; the old version is intact.
    /// </summary>
    InstallEntryReplaced = 235,
}

/// <summary>
/// Raised when Patcher refuses a patch or cannot complete an operation. <see cref="Code"/> is stable;
/// <see cref="Path"/> names the file or directory involved where one is known.
/// </summary>
public sealed class PatcherException : Exception
{
    /// <summary>Creates an exception with a code, message and optional path.</summary>
    public PatcherException(PatchErrorCode code, string message, string? path = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Path = path;
    }

    /// <summary>The stable error code.</summary>
    public PatchErrorCode Code { get; }

    /// <summary>The file or directory the error is about, if any.</summary>
    public string? Path { get; }

    /// <summary>Native error number (errno or Win32 error) when the failure came from the OS; otherwise 0.</summary>
    public int NativeError { get; init; }

    /// <summary>
    /// True when the failure came after the commit: the new version is installed and complete, only bookkeeping (the
    /// old version's removal, the journal's last row) is unfinished, and the next <see cref="Patcher.Recover"/> finishes
    /// it. A launcher should then start the new version rather than report a failed update. False for every failure
    /// before the commit, after which the old version is intact.
    /// </summary>
    public bool NewVersionInPlace { get; init; }
}
