using Patching.Manifests;

namespace Patching.Journal;

/// <summary>
/// A transaction's row: what it installs (the manifest and its hash, the signature and key ids that admitted it), how
/// (<see cref="Strategy"/>), and how far it got (<see cref="State"/>; for the swap, the staged tree's identity).
/// </summary>
internal sealed record TxRecord
{
    public required string Id { get; init; }
    public required TxKind Kind { get; init; }
    public required string Product { get; init; }
    public string? FromVersion { get; init; }
    public required string ToVersion { get; init; }
    public required string ManifestHash { get; init; }
    public required byte[] Manifest { get; init; }
    public string? Signature { get; init; }
    public string? KeyIds { get; init; }
    public required string Strategy { get; init; }
    public required TxState State { get; init; }
    public bool KeepPrevious { get; init; }
    public ulong StagingDevice { get; init; }
    public ulong StagingInode { get; init; }
}

internal sealed record InstalledRecord(string Product, string Version, string ManifestHash, byte[] Manifest,
    string? PreviousVersion, byte[]? PreviousManifest)
{
    /// <summary>
    /// <see cref="ManifestCodec.Hash"/> of <see cref="PreviousManifest"/> when known (the journal stores each manifest
    /// once, by hash). Left null, <see cref="JournalStore.MarkPatched"/> hashes the bytes itself.
    /// </summary>
    public string? PreviousManifestHash { get; init; }

    /// <summary>
    /// The installed row once <paramref name="manifestBytes"/> is committed over <paramref name="before"/>.
    /// When Patcher did not install the old version itself (no row yet) and the old tree is kept
    /// (<paramref name="keepsPreviousTree"/>), the old version is described by the patch's own base list, so that it can
    /// be rolled back to. When the old tree is not kept, that description would only repeat the base list, which the
    /// transaction's own manifest holds: it is not built (at 100k files, about 25 MiB written inside the patched step).
    /// </summary>
    public static InstalledRecord After(byte[] manifestBytes, string manifestHash, InstalledRecord? before, bool keepsPreviousTree) =>
        After(ManifestCodec.Deserialize(manifestBytes), manifestBytes, manifestHash, before, keepsPreviousTree);

    /// <summary><see cref="After(byte[], string, InstalledRecord?, bool)"/> for a caller that has the manifest parsed already.</summary>
    public static InstalledRecord After(Manifest manifest, byte[] manifestBytes, string manifestHash, InstalledRecord? before, bool keepsPreviousTree)
    {
        if (before is not null)
        {
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, before.Version, before.Manifest)
            {
                PreviousManifestHash = before.ManifestHash,
            };
        }

        if (manifest.FromVersion is null || !keepsPreviousTree)
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, manifest.FromVersion, null);
        var previous = new Manifest
        {
            Product = manifest.Product,
            Version = manifest.FromVersion,
            Created = manifest.Created,
            Directories = manifest.BaseDirectories,
            Files = manifest.Base.Select(b => TargetFile.Whole(b.Path, b.Size, b.Sha256)).ToList(),
            Base = [],
            Blobs = [],
        };
        var previousBytes = ManifestCodec.Serialize(previous);
        return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, manifest.FromVersion, previousBytes)
        {
            PreviousManifestHash = ManifestCodec.Hash(previousBytes),
        };
    }
}

/// <summary>A staged file that is complete, verified and durable: a resumed apply keeps it instead of writing it again.</summary>
/// <param name="Path">Relative install path.</param>
/// <param name="Expected">SHA-256 the manifest gives for the file.</param>
/// <param name="Observed">SHA-256 of what was written (of its only part when the file is one blob).</param>
/// <param name="State">See <see cref="FileState"/>.</param>
internal sealed record FileRow(string Path, string Expected, string? Observed, FileState State);

/// <summary>One step of a layered commit, in execution order.</summary>
/// <param name="Seq">Order of execution; also the name of its entry in the backup area.</param>
/// <param name="Kind">What the step does.</param>
/// <param name="Path">Relative install path.</param>
/// <param name="Expected">SHA-256 of the new content for placed files.</param>
/// <param name="Backup">Whether the old file is linked or copied into the backup area before the commit.</param>
/// <param name="User">The entry displaced is the user's: kept in the preserved folder, never deleted.</param>
/// <param name="State">See <see cref="OpState"/>.</param>
/// <param name="Layer">Which layer of the replace succeeded, for the log and for support.</param>
internal sealed record OpRow(int Seq, LayeredOpKind Kind, string Path, string? Expected, bool Backup, bool User, OpState State, string? Layer = null);
