using Patching.Manifests;
using Patching.Signing;

namespace Patching.Sources;

/// <summary><see cref="Patcher.ReadPatchInfo"/>: a patch's manifest summarised for a launcher, reading only.</summary>
internal static class PatchInfoReader
{
    public static PatchInfo Read(string patchDir, PatcherOptions options)
    {
        var package = PatchPackage.Open(patchDir, options.Limits);
        IReadOnlyList<string> keyIds;
        var verified = options.TrustedKeys.Count > 0;
        if (verified)
        {
            using var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold);
            keyIds = package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        }
        else
        {
            // Unverified content is still validated, so nothing hostile (control characters, traversal) is shown.
            ManifestValidator.Validate(package.Manifest, options.Limits);
            keyIds = package.Envelope?.Signatures.Select(x => x.KeyId).Distinct(StringComparer.Ordinal).ToList() ?? [];
        }

        var m = package.Manifest;
        var summary = PatchSummary.Of(m);
        return new PatchInfo(m.Product, m.Version, m.FromVersion, m.Created, m.Expires,
            summary.Added, summary.Changed, summary.Removed, summary.DownloadBytes, summary.TargetBytes, keyIds, verified, package.ManifestHash);
    }
}
