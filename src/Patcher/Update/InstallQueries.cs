using Patching.IO;
using Patching.Transaction;

namespace Patching.Update;

/// <summary>
/// The engine's read-only queries as the update code needs them, with the same native error mapping the front door
/// gives them (the update code sits below the front door and must not call it).
/// </summary>
internal static class InstallQueries
{
    public static InstallStatus Status(string installDir, PatcherOptions options) =>
        NativeErrors.Guard("status", installDir, () => TransactionEngine.Status(Path.GetFullPath(installDir), options));

    public static VerifyReport Verify(string installDir, PatcherOptions options, CancellationToken ct) =>
        NativeErrors.Guard("verify", installDir, () => TransactionEngine.Verify(Path.GetFullPath(installDir), options, null, ct));
}
