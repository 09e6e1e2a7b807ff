using Patching.Journal;
using Patching.Manifests;
using Patching.Signing;

namespace Patching.Recovery;

/// <summary>
/// Decides whether an interrupted update may be rolled forward: the manifest the journal stored for it must still
/// verify against the pinned keys, exactly as the patch had to when it was applied. The journal and the staged tree
/// are files in the state directory, and whoever could write them must not be able to install a version by leaving a
/// transaction for recovery to finish. Without pinned keys nothing can be verified, so such a transaction is rolled back.
/// </summary>
internal sealed class RollForwardTrust(IReadOnlyList<string> trustedKeys, int threshold)
{
    public static RollForwardTrust From(PatcherOptions options) => new(options.TrustedKeys, options.SignatureThreshold);

    /// <summary>
    /// Null when <paramref name="tx"/> may be rolled forward, else why not. A rollback to the kept previous version
    /// carries no signature of its own (its manifest was verified when it was installed); its tree is checked against
    /// that manifest by hash before it is put back.
    /// </summary>
    public PatcherException? Check(TxRecord tx)
    {
        if (tx.Kind != TxKind.Apply) return null;
        if (trustedKeys.Count == 0)
            return new PatcherException(PatchErrorCode.SignatureMissing, $"no trusted keys are configured to verify the interrupted update to {tx.ToVersion} again");
        if (tx.Signature is null)
            return new PatcherException(PatchErrorCode.SignatureMissing, $"the interrupted update to {tx.ToVersion} has no stored signature");
        try
        {
            var envelope = ManifestCodec.DeserializeEnvelope(System.Text.Encoding.UTF8.GetBytes(tx.Signature));
            using var policy = TrustPolicy.FromPems(trustedKeys, threshold);
            policy.Verify(ComposedManifest.SignedPart(tx.Manifest, null), envelope, null);
            return null;
        }
        catch (PatcherException ex)
        {
            return ex;
        }
    }
}
