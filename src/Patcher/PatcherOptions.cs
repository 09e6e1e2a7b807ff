using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Patching;

/// <summary>How the new version is committed.</summary>
public enum CommitStrategy
{
    /// <summary>Directory swap where the platform and file system allow it, layered otherwise.</summary>
    Auto,
    /// <summary>Stage a complete shadow tree beside the install and exchange the two directories in one step.</summary>
    Swap,
    /// <summary>Replace file by file, journaling each file (Windows, or where a swap is impossible).</summary>
    Layered,
}

/// <summary>
/// What <see cref="Patcher.Apply"/> does when programs are using the install (Linux: found through <c>/proc</c>; Windows:
/// through the Restart Manager).
/// </summary>
public enum RunningProgramPolicy
{
    /// <summary>Do not look. A program running from the install may keep writing into the old version after a swap.</summary>
    Ignore,
    /// <summary>Refuse with <see cref="PatchErrorCode.InstallInUse"/>, naming the programs; nothing is changed.</summary>
    Refuse,
    /// <summary>Use the layered strategy, which replaces files in place, so the programs keep the install they are in.</summary>
    UseLayered,
    /// <summary>
    /// Wait until no program uses the install, checking again every second on <see cref="PatcherOptions.TimeProvider"/>,
    /// then apply; after <see cref="PatcherOptions.RunningProgramsWait"/>, refuse as <see cref="Refuse"/> does. The
    /// waiting is reported as progress (phase Verifying, the programs as the current item) and logged.
    /// </summary>
    Wait,
}

/// <summary>Options for every <see cref="Patcher"/> operation. Immutable; use <c>with</c> to vary.</summary>
public sealed record PatcherOptions
{
    /// <summary>Pinned public keys (SubjectPublicKeyInfo PEM text) a patch must be signed by.</summary>
    public IReadOnlyList<string> TrustedKeys { get; init; } = [];

    /// <summary>How many distinct trusted keys must have signed. Default 1.</summary>
    public int SignatureThreshold { get; init; } = 1;

    /// <summary>Logs which step ran, which layer succeeded, which file was locked.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>Commit strategy. Default <see cref="CommitStrategy.Auto"/>.</summary>
    public CommitStrategy Strategy { get; init; } = CommitStrategy.Auto;

    /// <summary>Where the journal, lock, staging and backup live. Default <c>&lt;parent&gt;/.&lt;name&gt;.patcher</c>.</summary>
    public string? StateDirectory { get; init; }

    /// <summary>Allow installing a version that is not newer than the installed one.</summary>
    public bool AllowDowngrade { get; init; }

    /// <summary>Hash every base file before staging instead of comparing sizes only.</summary>
    public bool VerifyBaseHashes { get; init; }

    /// <summary>Keep the previous version after commit so <see cref="Patcher.Rollback"/> can restore it.</summary>
    public bool KeepPreviousVersion { get; init; }

    /// <summary>
    /// Delete the old version's files (the swap strategy's old tree, the blobs received for staging) on a background
    /// task after <see cref="Patcher.Apply"/> returns, instead of before. The switch, the user's files and the
    /// journal's <c>done</c> row are durable before Apply returns either way; only the removal of files nobody uses
    /// any more is deferred. Await <see cref="ApplyResult.Cleanup"/> before exiting to let it finish; whatever a process
    /// leaves behind (it exited, a file was busy) is removed by the next <see cref="Patcher.Recover"/> (also in the
    /// background, see <see cref="RecoveryResult.Cleanup"/>) or Apply. Default true.
    /// </summary>
    public bool CleanupInBackground { get; init; } = true;

    /// <summary>
    /// Hard-link the patch's blobs into the install instead of copying them, where a blob is stored uncompressed on the
    /// install's volume: each is still read and hashed (where it lies) before anything changes, but none is written
    /// again, which saves the time and the disk space of a second copy. The installed file then shares its data with
    /// the blob file: delete the patch after Apply, or leave it untouched (a game that rewrites such a file in place
    /// changes the blob too, and a later Apply of that patch refuses it as corrupt). A blob file that a user other than
    /// the one running Apply could have written is copied, never linked; so is one with a second name, special mode bits or
    /// extended attributes, or one open for writing. A linked file gets the mode a copy would get. Linux; elsewhere blobs
    /// are always copied.
    /// Default false.
    /// </summary>
    public bool LinkPatchBlobs { get; init; }

    /// <summary>Clock for expiry checks and retry delays.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Bounds on manifest size, counts and file sizes.</summary>
    public ManifestLimits Limits { get; init; } = ManifestLimits.Default;

    /// <summary>
    /// How long one file may stay locked by another process before the layered commit gives up.
    /// Default 30 s, or the <c>PATCHER_FILE_LOCK_TIMEOUT</c> environment variable (e.g. <c>10s</c>, <c>500ms</c>).
    /// </summary>
    public TimeSpan? FileLockTimeout { get; init; }

    /// <summary>
    /// What to do when a process has its working directory, an open file or a mapped file inside the install (a running
    /// game, a mod tool). Linux (<c>/proc</c>) and Windows (Restart Manager); elsewhere nothing is found. Default <see cref="RunningProgramPolicy.Ignore"/>: the
    /// launcher is expected to close the game first.
    /// </summary>
    public RunningProgramPolicy RunningPrograms { get; init; }

    /// <summary>
    /// How long <see cref="RunningProgramPolicy.Wait"/> waits for the programs using the install to exit before refusing
    /// with <see cref="PatchErrorCode.InstallInUse"/>. Default 60 s.
    /// </summary>
    public TimeSpan RunningProgramsWait { get; init; } = TimeSpan.FromSeconds(60);
}
