using Patching.IO;
using Patching.Sources;
using Patching.Transaction;

namespace Patching;

/// <summary>
/// The front door. A launcher calls <see cref="Apply"/> (or <see cref="ApplyAsync"/>); the app calls
/// <see cref="Recover"/> at startup. Whatever happens mid-update, the install ends up exactly the old
/// version or exactly the new one, and files neither version describes (saves, configs, mods) are kept.
/// </summary>
/// <remarks>
/// Failures throw <see cref="PatcherException"/> with a stable <see cref="PatchErrorCode"/>, never a raw I/O or
/// database exception. A refused patch (codes 100-199) changes nothing on disk. A failure before the commit
/// leaves the old version intact (a failed staging is rolled back before the exception leaves). The rare failure
/// after the commit (the journal's bookkeeping on a disk that just filled up) says in its message that the new
/// version is in place (<see cref="PatcherException.NewVersionInPlace"/>); the next <see cref="Recover"/> finishes the cleanup.
/// </remarks>
public static partial class Patcher
{
    /// <summary>Applies the patch in <paramref name="patchDir"/> to <paramref name="installDir"/>.</summary>
    /// <exception cref="PatcherException">The patch was refused or could not be applied; the old version is intact.</exception>
    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options) =>
        ApplyCore(installDir, patchDir, options, null, CancellationToken.None);

    /// <summary>Applies a patch on a worker thread, reporting progress. Cancelling before commit leaves the old version untouched.</summary>
    /// <exception cref="PatcherException">The patch was refused or could not be applied.</exception>
    /// <exception cref="OperationCanceledException">
    /// <paramref name="cancellationToken"/> was cancelled before the commit: what was staged is removed and the old
    /// version is intact. After the commit the apply runs to its end and cancellation is ignored.
    /// </exception>
    public static Task<ApplyResult> ApplyAsync(string installDir, string patchDir, PatcherOptions options,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => ApplyCore(installDir, patchDir, options, progress, cancellationToken), CancellationToken.None);

    /// <summary>
    /// Finishes or undoes an interrupted transaction. Costs one file-existence check when nothing is pending.
    /// </summary>
    public static RecoveryResult Recover(string installDir, PatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        return TransactionEngine.Recover(Path.GetFullPath(installDir), options ?? new PatcherOptions());
    }

    /// <summary>Reports the installed version and any pending transaction, without changing anything.</summary>
    public static InstallStatus Status(string installDir, PatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        return NativeErrors.Guard("status", installDir, () => TransactionEngine.Status(Path.GetFullPath(installDir), options ?? new PatcherOptions()));
    }

    /// <summary>Hashes every file of the installed version and reports missing or modified ones.</summary>
    /// <exception cref="PatcherException"><see cref="PatchErrorCode.NotManagedByPatcher"/> when Patcher never installed a version here.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; nothing was changed.</exception>
    public static VerifyReport Verify(string installDir, PatcherOptions? options = null, CancellationToken cancellationToken = default) =>
        VerifyCore(installDir, options, null, cancellationToken);

    /// <summary>
    /// <see cref="Verify"/> on a worker thread, reporting as it reads: phase <see cref="PatchPhase.Verifying"/> with the
    /// files and bytes hashed so far against the installed version's totals, then <see cref="PatchPhase.Done"/>.
    /// </summary>
    /// <exception cref="PatcherException"><see cref="PatchErrorCode.NotManagedByPatcher"/> when Patcher never installed a version here.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; nothing was changed.</exception>
    public static Task<VerifyReport> VerifyAsync(string installDir, PatcherOptions? options = null,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => VerifyCore(installDir, options, progress, cancellationToken), CancellationToken.None);

    /// <summary>
    /// <see cref="Recover"/> on a worker thread. Recovery is short and must not stop half way (it exists to end a
    /// half-done update), so <paramref name="cancellationToken"/> is observed only before it starts; the progress
    /// reports its start (<see cref="PatchPhase.Committing"/>) and its end (<see cref="PatchPhase.Done"/>).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before recovery started; nothing was changed.</exception>
    public static Task<RecoveryResult> RecoverAsync(string installDir, PatcherOptions? options = null,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => WholeStep(progress, options, cancellationToken, () => Recover(installDir, options)), CancellationToken.None);

    /// <summary>
    /// <see cref="Rollback"/> on a worker thread. Like recovery, a rollback that has begun runs to its end:
    /// <paramref name="cancellationToken"/> is observed only before it starts, and the progress reports its start
    /// (<see cref="PatchPhase.Committing"/>) and its end (<see cref="PatchPhase.Done"/>).
    /// </summary>
    /// <exception cref="PatcherException"><see cref="PatchErrorCode.NothingToRollBack"/> when no previous version is kept.</exception>
    /// <exception cref="OperationCanceledException">Cancelled before the rollback started; nothing was changed.</exception>
    public static Task<ApplyResult> RollbackAsync(string installDir, PatcherOptions? options = null,
        IProgress<PatchProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => WholeStep(progress, options, cancellationToken, () => Rollback(installDir, options)), CancellationToken.None);

    /// <summary>
    /// What the patch in <paramref name="patchDir"/> is and would do, read from its manifest without changing anything
    /// on disk: product, versions, files added, changed and removed, bytes to download, signing key ids. With
    /// <see cref="PatcherOptions.TrustedKeys"/> set, the signature is verified first, exactly as <see cref="Apply"/>
    /// would (a refusal throws the same error) and <see cref="PatchInfo.SignatureVerified"/> is true; without, the key
    /// ids are those the patch claims, unverified. Either way the manifest is checked against the format's rules and
    /// <see cref="PatcherOptions.Limits"/>, so nothing hostile reaches a launcher's screen.
    /// </summary>
    /// <exception cref="PatcherException">The patch is missing, malformed, or (with trusted keys) not signed by them.</exception>
    public static PatchInfo ReadPatchInfo(string patchDir, PatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(patchDir);
        var full = Path.GetFullPath(patchDir);
        return NativeErrors.Guard("read the patch", full, () => PatchInfoReader.Read(full, options ?? new PatcherOptions()));
    }

    private static VerifyReport VerifyCore(string installDir, PatcherOptions? options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        return NativeErrors.Guard("verify", installDir, () => TransactionEngine.Verify(Path.GetFullPath(installDir), options ?? new PatcherOptions(), progress, ct));
    }

    /// <summary>An operation that runs to its end once started: cancellation before it, progress around it.</summary>
    private static T WholeStep<T>(IProgress<PatchProgress>? progress, PatcherOptions? options, CancellationToken ct, Func<T> step)
    {
        ct.ThrowIfCancellationRequested();
        progress = Progress.ProgressTracker.Wrap(progress, (options ?? new PatcherOptions()).TimeProvider);
        progress?.Report(new PatchProgress(PatchPhase.Committing, 0, 1, 0, 0));
        var result = step();
        progress?.Report(new PatchProgress(PatchPhase.Done, 1, 1, 0, 0));
        return result;
    }

    /// <summary>Restores the previous version kept by <see cref="PatcherOptions.KeepPreviousVersion"/>.</summary>
    /// <exception cref="PatcherException"><see cref="PatchErrorCode.NothingToRollBack"/> when none is kept.</exception>
    public static ApplyResult Rollback(string installDir, PatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        return NativeErrors.Guard("rollback", installDir, () => TransactionEngine.Rollback(Path.GetFullPath(installDir), options ?? new PatcherOptions()));
    }

    private static ApplyResult ApplyCore(string installDir, string patchDir, PatcherOptions options,
        IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        ArgumentNullException.ThrowIfNull(patchDir);
        ArgumentNullException.ThrowIfNull(options);
        return TransactionEngine.Apply(Path.GetFullPath(installDir), Path.GetFullPath(patchDir), options, progress, ct);
    }
}
