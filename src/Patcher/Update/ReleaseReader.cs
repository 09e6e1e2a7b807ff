using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Store;

namespace Patching.Update;

/// <summary>Which version's manifest to read, and where its patch directory is.</summary>
/// <param name="Product">The product the manifest must be of.</param>
/// <param name="Version">The version the manifest must be of.</param>
/// <param name="ExpectedSha256">The manifest hash a channel pointer named, or null when none did (a repair).</param>
/// <param name="PatchDir">The version's patch directory in the download folder, where the manifest is kept.</param>
internal sealed record ManifestRequest(string Product, string Version, string? ExpectedSha256, string PatchDir);

/// <summary>How a version's pieces are stored: each one's stored size and name (null sizes: raw pieces of a store without indexes), and its deltas.</summary>
internal sealed record StoreLayoutInfo(Dictionary<string, long>? StoredSizes, IReadOnlyList<StoredDelta> Deltas)
{
    public long StoredSize(BlobEntry blob) => StoredSizes is null ? blob.Size : StoredSizes[blob.Sha256];

    public string Name(BlobEntry blob) => StoredSizes is null ? SourceNames.Blob(blob.Sha256) : SourceNames.Piece(blob.Sha256);
}

/// <summary>
/// Reads a version's signed objects from a release store, its manifest and its index, and verifies each against the
/// trusted keys before anything in it is believed.
/// </summary>
internal sealed class ReleaseReader(IUpdateSource source, PatcherOptions options)
{
    /// <summary>
    /// Fetches (or finds from an earlier run) the manifest of the requested version and its signature, and verifies
    /// both against the keys and, when given, the hash a channel pointer named.
    /// </summary>
    public async Task<PatchPackage> ReadManifestAsync(ManifestRequest request, CancellationToken ct)
    {
        var (product, version, expectedSha256, patchDir) = (request.Product, request.Version, request.ExpectedSha256, request.PatchDir);
        var manifestPath = Path.Join(patchDir, ManifestCodec.ManifestFileName);
        if (!File.Exists(manifestPath) || (expectedSha256 is not null && ManifestCodec.Hash(File.ReadAllBytes(manifestPath)) != expectedSha256))
        {
            var name = SourceNames.Manifest(version);
            var bytes = await source.ReadAllAsync(name, (int)Math.Min(int.MaxValue, options.Limits.MaxManifestBytes), ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no manifest of version {version} ({name})", name);
            if (expectedSha256 is not null && ManifestCodec.Hash(bytes) != expectedSha256)
                throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} hashes to {ManifestCodec.Hash(bytes)}, the channel pointer names {expectedSha256}", name);
            var sigName = SourceNames.ManifestSignature(version);
            var sig = await source.ReadAllAsync(sigName, MaxSignatureBytes, ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the manifest of version {version} has no signature ({sigName})", sigName);
            DownloadFolder.WriteReplacing(Path.Join(patchDir, ManifestCodec.SignatureFileName), sig);
            DownloadFolder.WriteReplacing(manifestPath, bytes);
        }

        var package = OpenVerified(patchDir);
        var m = package.Manifest;
        if (!m.IsFullPackage || m.Product != product || m.Version != version || m.Blobs.Any(b => b.Compression != BlobCompression.None))
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"the manifest of version {version} is not a store release of {product} {version}", manifestPath);
        return package;
    }

    /// <summary>
    /// Opens the patch directory <paramref name="dir"/> and verifies its manifest's signature against the trusted keys.
    /// <paramref name="installedManifest"/> supplies the installed version's manifest that a delta listing only changes
    /// names as its base (a store's deltas ship no base.msgpack).
    /// </summary>
    public PatchPackage OpenVerified(string dir, Func<RecordedManifests>? installedManifest = null)
    {
        var package = PatchPackage.Open(dir, options.Limits, installedManifest);
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        return package;
    }

    /// <summary>Largest signature file read from the store.</summary>
    public int MaxSignatureBytes => (int)Math.Min(int.MaxValue, options.Limits.MaxSignatureBytes);

    /// <summary>
    /// Reads and verifies the version's signed index (its pieces' stored sizes, its deltas). A store written before pieces
    /// were compressed has none: its pieces are read raw from <c>blobs/</c>.
    /// </summary>
    public async Task<StoreLayoutInfo> ReadLayoutAsync(PatchPackage package, CancellationToken ct)
    {
        var index = await ReadIndexAsync(package.Manifest.Product, package.Manifest.Version, ct).ConfigureAwait(false);
        return index is null
            ? new StoreLayoutInfo(null, [])
            : new StoreLayoutInfo(index.CheckAgainst(package.Manifest, package.ManifestHash, SourceNames.Index(package.Manifest.Version)), index.Deltas);
    }

    /// <summary>The signed index of <paramref name="version"/>, verified and checked to describe it; null when the store has none.</summary>
    public async Task<StoreIndex?> ReadIndexAsync(string product, string version, CancellationToken ct)
    {
        var name = SourceNames.Index(version);
        var bytes = await source.ReadAllAsync(name, StoreIndex.MaxBytes, ct).ConfigureAwait(false);
        if (bytes is null) return null;
        var sigName = SourceNames.IndexSignature(version);
        var sig = await source.ReadAllAsync(sigName, MaxSignatureBytes, ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the index of version {version} has no signature ({sigName})", sigName);
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            policy.Verify(bytes, ManifestCodec.DeserializeEnvelope(sig, sigName), name);
        var index = StoreIndex.Parse(bytes, name);
        if (index.Product != product || index.Version != version)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} describes {index.Product} {index.Version}, not {product} {version}", name);
        return index;
    }
}
