using Patching.Manifests;
using Patching.Signing;

namespace Patching.Sources;

/// <summary><see cref="Patcher.ReadPatchInfo"/>: a patch's manifest summarised for a launcher, reading only.</summary>
internal static class PatchInfoReader
{
    public static PatchInfo Read(string patchDir, PatcherOptions options)
    {
        var package = PatchPackage.Open(patchDir, options.Limits);
        var verified = options.TrustedKeys.Count > 0;
        using var policy = verified ? TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold) : null;
        IReadOnlyList<string> keyIds;
        try
        {
            if (policy is not null)
            {
                keyIds = package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
            }
            else
            {
                // Unverified content is still validated, so nothing hostile (control characters, traversal) is shown.
                ManifestValidator.Validate(package.Manifest, options.Limits);
                keyIds = Claimed(package);
            }
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseManifestMissing && package.Raw is { BaseManifest: not null } raw)
        {
            // The manifest lists only changes and its base is not here: what the patch says can still be shown.
            return ChangesAlone(package, raw, policy, options);
        }

        var m = package.Manifest;
        var summary = PatchSummary.Of(m);
        return new PatchInfo(m.Product, m.Version, m.FromVersion, m.Created, m.Expires,
            summary.Added, summary.Changed, summary.Removed, summary.DownloadBytes, summary.TargetBytes, keyIds, verified, package.ManifestHash);
    }

    private static List<string> Claimed(PatchPackage package) =>
        package.Envelope?.Signatures.Select(x => x.KeyId).Distinct(StringComparer.Ordinal).ToList() ?? [];

    /// <summary>
    /// A manifest listing only its changes, without its base version's file list: the signature is checked over the
    /// signed bytes (as <see cref="PatchPackage.VerifySignature"/> does before it composes), the expiry and every listed
    /// path are checked, and the changes are reported as listed.
    /// </summary>
    private static PatchInfo ChangesAlone(PatchPackage package, RawManifest raw, TrustPolicy? policy, PatcherOptions options)
    {
        var keyIds = policy is null ? Claimed(package) : policy.Verify(package.SignedBytes, package.Envelope, package.ManifestPath);
        if (policy is not null && raw.Expires is { } expires && expires <= options.TimeProvider.GetUtcNow())
            throw new PatcherException(PatchErrorCode.ManifestExpired, $"patch expired at {expires:u}", package.ManifestPath);
        var listed = ManifestChanges.Listed(raw.Added!, raw.Changed!);
        if (listed.Count + raw.Removed!.Count > options.Limits.MaxFiles)
            throw new PatcherException(PatchErrorCode.LimitExceeded, $"manifest lists more than {options.Limits.MaxFiles} entries", package.ManifestPath);
        foreach (var path in listed.Select(f => f.Path).Concat(raw.Removed)) ManifestValidator.CheckPath(path);

        return new PatchInfo(raw.Product!, raw.Version!, raw.FromVersion, raw.Created!.Value, raw.Expires,
            Sorted(raw.Added!.Select(f => f.Path)), Sorted(raw.Changed!.Select(f => f.Path)), Sorted(raw.Removed),
            raw.Payload, listed.Sum(f => f.Size), keyIds, policy is not null, ManifestCodec.Hash(package.SignedBytes))
        {
            BaseNeededToApply = true,
        };
    }

    private static List<string> Sorted(IEnumerable<string> paths)
    {
        var list = paths.ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }
}
