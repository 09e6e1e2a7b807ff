using Patching.Manifests;

namespace Patching.Sources;

/// <summary>
/// The manifests an install's journal records that a patch listing only changes may name as its base: the installed
/// version's, and the one an interrupted transaction installs if recovery rolls it forward (null: none).
/// </summary>
internal sealed record RecordedManifests(byte[]? Installed, byte[]? Pending);

/// <summary>A format 2 manifest that lists only changes: finding the base version it names, and composing over it.</summary>
internal sealed partial class PatchPackage
{
    /// <summary>Whether the manifest lists only the changes from a base version (parsing nothing else).</summary>
    public bool ListsChangesOnly => Raw is { BaseManifest: not null };

    /// <summary>The format 2 map as read (null for format 1): what <c>inspect</c> shows when the base is not at hand.</summary>
    public RawManifest? Raw => _raw.Value;

    private RawManifest? ReadRaw() =>
        MessagePackManifest.LooksLikeMessagePack(SignedBytes) && MessagePackManifest.PeekFormat(SignedBytes) == MessagePackManifest.Format
            ? MessagePackManifest.ReadRaw(SignedBytes, ManifestPath)
            : null;

    /// <summary>The manifest and the bytes the journal keeps for it (see <see cref="ManifestBytes"/>).</summary>
    private (Manifest, byte[]) Compose()
    {
        if (Raw is not { } raw) return (ManifestCodec.Deserialize(SignedBytes, ManifestPath), SignedBytes);
        if (raw.BaseManifest is null) return (MessagePackManifest.Resolve(raw, null, ManifestPath), SignedBytes);
        var (listing, baseBytes) = FindBase(raw);
        return (MessagePackManifest.Resolve(raw, listing, ManifestPath), ComposedManifest.Serialize(SignedBytes, baseBytes));
    }

    /// <summary>
    /// The base version the manifest names by the SHA-256 of its <see cref="VersionManifest"/>: the installed version as
    /// the journal records it, when its manifest hashes so; else <see cref="VersionManifest.FileName"/> beside the patch,
    /// which must hash so (<see cref="PatchErrorCode.BaseManifestMismatch"/>). Neither: the installed version is another
    /// (<see cref="PatchErrorCode.WrongProduct"/>, <see cref="PatchErrorCode.NotNewer"/>, <see cref="PatchErrorCode.WrongBaseVersion"/>
    /// as the transaction's preflight would say), another build of the same version (<see cref="PatchErrorCode.BaseManifestMismatch"/>),
    /// or unknown (<see cref="PatchErrorCode.BaseManifestMissing"/>).
    /// </summary>
    private (VersionListing Listing, byte[] Bytes) FindBase(RawManifest raw)
    {
        var want = raw.BaseManifest!;
        var recorded = _installedManifest?.Invoke();
        var installed = recorded?.Installed is { } record ? ManifestCodec.Deserialize(record) : null;
        // A pending transaction's version is a candidate too: the apply recovers it before anything else, and if that
        // rolls back instead, the check against the installed version after recovery refuses the patch.
        foreach (var candidate in new[] { installed, recorded?.Pending is { } pending ? ManifestCodec.Deserialize(pending) : null })
        {
            if (candidate is null) continue;
            var bytes = VersionManifest.Serialize(VersionListing.TargetOf(candidate));
            // Read back from the canonical bytes: the listing is then the same whichever way the base was found.
            if (ManifestCodec.Hash(bytes) == want) return (VersionManifest.Deserialize(bytes, null), bytes);
        }

        var file = Path.Join(Directory, VersionManifest.FileName);
        if (ReadBounded(file, _limits.MaxManifestBytes, PatchErrorCode.ManifestTooLarge) is { } shipped)
        {
            var hash = ManifestCodec.Hash(shipped);
            if (hash != want)
                throw new PatcherException(PatchErrorCode.BaseManifestMismatch,
                    $"{VersionManifest.FileName} beside the patch has SHA-256 {hash}, but the patch was built against base manifest {want}", file);
            return (VersionManifest.Deserialize(shipped, file), shipped);
        }

        if (installed is not null) throw NotTheBase(raw, installed);
        throw new PatcherException(PatchErrorCode.BaseManifestMissing,
            $"the patch lists only the changes from {raw.Product} {raw.FromVersion} (base manifest {want}); the journal records no installed version " +
            $"and the patch has no {VersionManifest.FileName}: ship {VersionManifest.FileName} beside the patch or use a full package", file);
    }

    /// <summary>Why the installed version (not the one the patch names) cannot be its base.</summary>
    private static PatcherException NotTheBase(RawManifest raw, Manifest installed)
    {
        if (installed.Product != raw.Product)
            return new PatcherException(PatchErrorCode.WrongProduct, $"patch is for product '{raw.Product}' but '{installed.Product}' is installed");
        if (installed.Version != raw.FromVersion)
        {
            return PatchVersion.Parse(raw.Version!, "version") <= PatchVersion.Parse(installed.Version, "installed version")
                ? new PatcherException(PatchErrorCode.NotNewer, $"version {raw.Version} is not newer than the installed {installed.Version}")
                : new PatcherException(PatchErrorCode.WrongBaseVersion, $"patch updates from {raw.FromVersion} but {installed.Version} is installed");
        }

        return new PatcherException(PatchErrorCode.BaseManifestMismatch,
            $"the installed {installed.Version} is another build than the one the patch was built against (base manifest {raw.BaseManifest}); " +
            $"ship {VersionManifest.FileName} beside the patch or use a full package");
    }
}
