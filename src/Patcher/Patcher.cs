using Patching.IO;
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
/// version is in place; the next <see cref="Recover"/> finishes the cleanup.
/// </remarks>
public static partial class Patcher
{
    /// <summary>Applies the patch in <paramref name="patchDir"/> to <paramref name="installDir"/>.</summary>
    /// <exception cref="PatcherException">The patch was refused or could not be applied; the old version is intact.</exception>
    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options) =>
        ApplyCore(installDir, patchDir, options, null, CancellationToken.None);

    /// <summary>Applies a patch on a worker thread, reporting progress. Cancelling before commit leaves the old version untouched.</summary>
    /// <exception cref="PatcherException">Refused, failed, or <see cref="PatchErrorCode.Cancelled"/>.</exception>
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
    public static VerifyReport Verify(string installDir, PatcherOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installDir);
        return NativeErrors.Guard("verify", installDir, () => TransactionEngine.Verify(Path.GetFullPath(installDir), options ?? new PatcherOptions(), cancellationToken));
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
