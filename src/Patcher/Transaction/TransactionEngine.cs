namespace Patching.Transaction;

// Placeholder while the transaction engine is written; replaced in the next commits.
internal static class TransactionEngine
{
    public static ApplyResult Apply(string installDir, string patchDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) => throw new NotImplementedException();
    public static RecoveryResult Recover(string installDir, PatcherOptions options) => throw new NotImplementedException();
    public static InstallStatus Status(string installDir, PatcherOptions options) => throw new NotImplementedException();
    public static VerifyReport Verify(string installDir, PatcherOptions options, CancellationToken ct) => throw new NotImplementedException();
    public static ApplyResult Rollback(string installDir, PatcherOptions options) => throw new NotImplementedException();
}
