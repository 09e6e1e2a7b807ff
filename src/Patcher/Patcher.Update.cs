using Patching.Update;

namespace Patching;

/// <summary>Updates from a release store (<c>patchtool publish</c>) through an <see cref="IUpdateSource"/>.</summary>
public static partial class Patcher
{
    /// <summary>
    /// Reads the channel's signed pointer and tells whether a newer version than the installed one is available.
    /// Changes nothing on disk.
    /// </summary>
    /// <exception cref="PatcherException">The pointer is missing, unsigned, expired (<see cref="PatchErrorCode.ChannelExpired"/>),
    /// replayed (<see cref="PatchErrorCode.ChannelRollback"/>), or the source failed.</exception>
    public static Task<UpdateCheck> CheckForUpdateAsync(string installDir, IUpdateSource source, UpdateOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return Updater.CheckAsync(Path.GetFullPath(installDir), source, options, cancellationToken);
    }

    /// <summary>
    /// Moves the install to the channel's latest version, from whatever version is installed: every piece of the new
    /// version that the install already holds (checked by SHA-256) is reused, only the others are downloaded (reported as
    /// <see cref="PatchPhase.Downloading"/>), then the new version is committed with the usual transaction. Downloaded
    /// pieces are kept in the state directory until the update commits, so an interrupted or cancelled run resumes
    /// without fetching them again.
    /// </summary>
    /// <exception cref="PatcherException">Refused or failed; the old version is intact.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the old version is intact and verified downloads are kept.</exception>
    public static Task<UpdateResult> UpdateAsync(string installDir, IUpdateSource source, UpdateOptions options,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return Updater.UpdateAsync(Path.GetFullPath(installDir), source, options, progress, cancellationToken);
    }

    /// <summary>
    /// Hashes every file of the installed version and puts back the missing or modified ones from the store: the
    /// installed version's signed manifest is fetched, every piece still intact anywhere in the install is reused, and
    /// only the others are downloaded. The repaired version is committed with the usual transaction; the player's files
    /// (those no version describes) are untouched. Nothing is downloaded or changed when every file matches.
    /// </summary>
    /// <exception cref="PatcherException"><see cref="PatchErrorCode.NotManagedByPatcher"/> when Patcher installed no version here;
    /// the source's and the transaction's errors otherwise.</exception>
    public static Task<RepairResult> RepairAsync(string installDir, IUpdateSource source, UpdateOptions options,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return Updater.RepairAsync(Path.GetFullPath(installDir), source, options, progress, cancellationToken);
    }
}
