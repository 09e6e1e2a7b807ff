using System.IO.Compression;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;

namespace Patching.Building;

/// <summary>What a publisher asks for when building a patch.</summary>
internal sealed record BuildRequest
{
    /// <summary>The old tree; null builds a full package.</summary>
    public string? FromDir { get; init; }
    public required string ToDir { get; init; }
    public required string OutDir { get; init; }
    public required string Product { get; init; }
    public required string Version { get; init; }
    /// <summary>Required with <see cref="FromDir"/>.</summary>
    public string? FromVersion { get; init; }
    /// <summary>PKCS#8 PEM; null writes an unsigned patch for offline signing.</summary>
    public string? PrivateKeyPem { get; init; }
    public DateTimeOffset? Expires { get; init; }
    public bool Compress { get; init; } = true;
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Manifest format: 2 (MessagePack, chunk reuse and zstd deltas) by default, 1 (JSON, whole-file Brotli blobs).</summary>
    public int Format { get; init; } = MessagePackManifest.Format;

    /// <summary>zstd level of format 2's frames (1..22), or <see cref="PatchBuilder.AutoLevel"/> to let the size of the update choose.</summary>
    public int Level { get; init; } = PatchBuilder.AutoLevel;

    /// <summary>
    /// Format 2 delta: list both trees whole, as the first format 2 builds did, instead of only what changes from the
    /// base version (named by its <see cref="VersionManifest"/> hash).
    /// </summary>
    public bool ListUnchanged { get; init; }

    /// <summary>
    /// Format 2 delta listing only changes: also write the base version's manifest beside the patch
    /// (<see cref="VersionManifest.FileName"/>), for installs whose journal does not record that version.
    /// </summary>
    public bool WriteBaseManifest { get; init; } = true;

    /// <summary>
    /// Format 2: frames may also reference contents the patch rebuilds earlier (several builds of one bundle, changed
    /// alike, ship their common edit once). Off: references into the base only, as a baseline to measure against.
    /// </summary>
    public bool ContentWindows { get; init; } = true;
}

/// <param name="ManifestPath">The manifest file written.</param>
/// <param name="Manifest">The manifest written.</param>
/// <param name="BlobCount">Format 1: blobs written. Format 2: zstd frames in the payload.</param>
/// <param name="BlobBytes">Bytes to download besides the manifest: format 1's blobs, format 2's payload.</param>
/// <param name="ManifestBytes">Length of the manifest file.</param>
/// <param name="Deltas">Format 2: what was reused and shipped, in bytes.</param>
/// <param name="Level">Format 2: the zstd level the frames were compressed at.</param>
internal sealed record BuildResult(string ManifestPath, Manifest Manifest, int BlobCount, long BlobBytes, long ManifestBytes = 0, DeltaStats? Deltas = null, int Level = 0);

/// <summary>Scans two trees, writes content-addressed blobs for content the base lacks, and the manifest.</summary>
internal static class PatchBuilder
{
    /// <summary>
    /// zstd level of format 2 by default: the smallest patches that still build at a few MB/s on one core (publishers
    /// build once, players download many times). Measured in docs/decisions.md.
    /// </summary>
    public const int DefaultLevel = 19;

    /// <summary>
    /// The level a build uses when none is given: <see cref="DefaultLevel"/> while the contents to rebuild total at most
    /// <see cref="LargeUpdateBytes"/>, else <see cref="LargeUpdateLevel"/>. Level 19 costs about as much per byte of
    /// reference as per byte compressed, so on an update of gigabytes it would take many minutes for a payload a few
    /// percent smaller; the level/size/time table behind these numbers is in docs/decisions.md.
    /// </summary>
    public const int AutoLevel = 0;

    /// <summary>
    /// Contents to rebuild (bytes of the target files that need a recipe) above which an update is large: the automatic
    /// level drops and reference windows follow each run (<see cref="DeltaBuilder"/>).
    /// </summary>
    public const long LargeUpdateBytes = 64L * 1024 * 1024;

    /// <summary>The automatic level for updates larger than <see cref="LargeUpdateBytes"/>.</summary>
    public const int LargeUpdateLevel = 9;

    /// <summary>The level a build of <paramref name="contentBytes"/> of contents to rebuild uses for <paramref name="requested"/>.</summary>
    public static int ResolveLevel(int requested, long contentBytes) =>
        requested != AutoLevel ? requested : contentBytes <= LargeUpdateBytes ? DefaultLevel : LargeUpdateLevel;

    /// <summary>Input bytes of format 2 contents built in parallel at once (their frames are held in memory until appended).</summary>
    private const long BatchBytes = 256L * 1024 * 1024;

    public static BuildResult Build(BuildRequest request, CancellationToken ct = default)
    {
        if (request.Format is not (Manifest.CurrentFormat or MessagePackManifest.Format))
            throw new ArgumentException($"format {request.Format} cannot be built (1 or 2)");
        if (request.Level != AutoLevel && request.Level is < 1 or > 22) throw new ArgumentException($"zstd level {request.Level} is out of range (1 to 22)");
        if (request.FromDir is not null && request.FromVersion is null)
            throw new ArgumentException("--from-version is required when building from an old tree");
        _ = PatchVersion.Parse(request.Version, "version");
        if (request.FromVersion is not null)
        {
            var from = PatchVersion.Parse(request.FromVersion, "from-version");
            if (from >= PatchVersion.Parse(request.Version, "version"))
                throw new PatcherException(PatchErrorCode.NotNewer, $"version {request.Version} is not newer than from-version {request.FromVersion}");
        }

        var target = TreeScanner.Scan(request.ToDir, ct: ct);
        var baseTree = request.FromDir is null ? new ScannedTree([], []) : TreeScanner.Scan(request.FromDir, ct: ct);

        foreach (var path in target.Files.Select(f => f.Path).Concat(target.Directories))
        {
            var reason = PathRules.Check(path);
            if (reason is not null) throw new PatcherException(PatchErrorCode.UnsafePath, $"cannot publish '{path}': {reason}", path);
        }

        if (request.Format == MessagePackManifest.Format) return BuildFormat2(request, target, baseTree, ct);
        var baseContent = baseTree.Files.Select(f => (f.Sha256, f.Size)).ToHashSet();
        var blobsDir = Path.Join(request.OutDir, "blobs");
        Directory.CreateDirectory(blobsDir);

        // One blob per distinct non-empty content the base does not have (empty files have no parts); the first
        // file with that content is the source.
        var needed = target.Files
            .Where(f => f.Size > 0 && !baseContent.Contains((f.Sha256, f.Size)))
            .GroupBy(f => f.Sha256)
            .Select(g => g.First())
            .OrderBy(f => f.Sha256, StringComparer.Ordinal)
            .ToList();

        var blobs = new BlobEntry[needed.Count];
        Parallelism.ForEach(Enumerable.Range(0, needed.Count), ct, i =>
        {
            blobs[i] = WriteBlob(PathRules.Join(request.ToDir, needed[i].Path), needed[i], request.OutDir, request.Compress, ct);
        });

        var manifest = NewManifest(request, target, baseTree, blobs);
        var manifestPath = WriteManifest(request, manifest);
        return new BuildResult(manifestPath, manifest, blobs.Length, blobs.Sum(b => b.StoredSize), new FileInfo(manifestPath).Length);
    }

    /// <summary>
    /// Format 2: whole files found in the base are placed from there; every other content gets a recipe of copies and
    /// zstd frames (<see cref="DeltaBuilder"/>), the frames appended to one payload file. Contents are built in
    /// path order, so the payload and the manifest are the same bytes on every build.
    /// </summary>
    private static BuildResult BuildFormat2(BuildRequest request, ScannedTree target, ScannedTree baseTree, CancellationToken ct)
    {
        var baseContent = baseTree.Files.Select(f => (f.Sha256, f.Size)).ToHashSet();
        var needed = new List<ScannedFile>();
        var recipeFor = new HashSet<string>(StringComparer.Ordinal);
        long reused = 0;
        foreach (var f in target.Files)
        {
            if (f.Size == 0) continue;
            if (baseContent.Contains((f.Sha256, f.Size))) reused += f.Size;
            else if (recipeFor.Add(f.Sha256)) needed.Add(f);
        }

        var contentBytes = needed.Sum(f => f.Size);
        var level = ResolveLevel(request.Level, contentBytes);
        var builder = new DeltaBuilder(request.FromDir ?? "", baseTree, level, large: contentBytes > LargeUpdateBytes);
        builder.CountReused(reused);

        if (needed.Count > 0 && baseTree.Files.Count > 0) builder.IndexBase(ct);
        if (needed.Count > 1 && request.ContentWindows) builder.IndexContents(request.ToDir, needed, ct);
        // Files are built in parallel, in batches of at most BatchBytes of input, each file's frames into a buffer of its
        // own; the buffers are then appended to the payload in file order, so the bytes do not depend on scheduling and
        // memory stays bounded by the batch.
        var recipes = new List<ContentRecipe>(needed.Count);
        long payloadSize;
        var frames = 0;
        Directory.CreateDirectory(request.OutDir);
        using (var payload = File.Create(Path.Join(request.OutDir, DeltaLimits.PayloadFileName)))
        {
            for (var start = 0; start < needed.Count;)
            {
                var end = start;
                long batchBytes = 0;
                while (end < needed.Count && (end == start || batchBytes + needed[end].Size <= BatchBytes)) batchBytes += needed[end++].Size;
                var built = new (ContentRecipe Recipe, Stream Frames)[end - start];
                Parallelism.ForEach(Enumerable.Range(start, end - start), ct, i =>
                {
                    // A file larger than a batch is built alone, its frames into a temporary file beside the payload.
                    Stream buffer = needed[i].Size > BatchBytes
                        ? new FileStream(Path.Join(request.OutDir, DeltaLimits.PayloadFileName + ".part"), FileMode.Create, FileAccess.ReadWrite,
                            FileShare.None, 1 << 16, FileOptions.DeleteOnClose)
                        : new MemoryStream();
                    built[i - start] = (builder.Build(needed[i], PathRules.Join(request.ToDir, needed[i].Path), buffer, ct), buffer);
                });
                foreach (var (recipe, buffer) in built)
                {
                    using (buffer) recipes.Add(builder.Append(recipe, buffer, payload));
                    frames += recipe.Ops.Count(o => o.Kind == DeltaOpKind.Data);
                }

                start = end;
            }

            payloadSize = payload.Length;
        }

        var manifest = NewManifest(request, target, baseTree, []) with { Format = MessagePackManifest.Format, Recipes = recipes, PayloadSize = payloadSize };
        manifest = ListChangesOnly(request, baseTree, manifest);
        var manifestPath = WriteManifest(request, manifest);
        return new BuildResult(manifestPath, manifest, frames, payloadSize, new FileInfo(manifestPath).Length, builder.Stats, level);
    }

    /// <summary>
    /// A format 2 delta lists only what changes unless asked to list both trees: the manifest then carries the base
    /// version it is composed over, and its version manifest is written beside the patch when asked (any left there
    /// by an earlier build is removed otherwise).
    /// </summary>
    private static Manifest ListChangesOnly(BuildRequest request, ScannedTree baseTree, Manifest manifest)
    {
        var basePath = Path.Join(request.OutDir, VersionManifest.FileName);
        if (request.FromDir is not null && !request.ListUnchanged)
        {
            var baseVersion = new VersionListing(request.Product, request.FromVersion!, baseTree.Directories,
                baseTree.Files.Select(f => TargetFile.Whole(f.Path, f.Size, f.Sha256, f.Executable)).ToList());
            manifest = manifest with { BaseVersion = baseVersion };
            if (request.WriteBaseManifest) File.WriteAllBytes(basePath, VersionManifest.Serialize(baseVersion));
        }

        if (manifest.BaseVersion is null || !request.WriteBaseManifest) File.Delete(basePath);
        return manifest;
    }

    /// <summary>The manifest of both formats: the request's identity and dates, both trees' lists, and the blobs shipped (format 1).</summary>
    private static Manifest NewManifest(BuildRequest request, ScannedTree target, ScannedTree baseTree, IReadOnlyList<BlobEntry> blobs) => new()
    {
        Product = request.Product,
        Version = request.Version,
        FromVersion = request.FromVersion,
        Created = TruncateToSeconds(request.Time.GetUtcNow()),
        Expires = request.Expires,
        Directories = target.Directories,
        Files = target.Files.Select(f => TargetFile.Whole(f.Path, f.Size, f.Sha256, f.Executable)).ToList(),
        Base = baseTree.Files.Select(f => new BaseFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256 }).ToList(),
        BaseDirectories = baseTree.Directories,
        Blobs = blobs,
    };

    /// <summary>Validates, writes and (with a key) signs the manifest; returns its path.</summary>
    private static string WriteManifest(BuildRequest request, Manifest manifest)
    {
        ManifestValidator.Validate(manifest, ManifestLimits.Default);
        var bytes = ManifestCodec.Serialize(manifest);
        var manifestPath = Path.Join(request.OutDir, ManifestCodec.FileNameFor(manifest.Format));
        File.WriteAllBytes(manifestPath, bytes);
        var sigPath = Path.Join(request.OutDir, ManifestCodec.SignatureFileName);
        if (request.PrivateKeyPem is not null)
        {
            var sig = SigningKeys.Sign(bytes, request.PrivateKeyPem);
            File.WriteAllBytes(sigPath, ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [sig] }));
        }
        else if (File.Exists(sigPath))
        {
            File.Delete(sigPath);
        }

        return manifestPath;
    }

    /// <summary>Adds a signature to an existing patch, keeping signatures by other keys (threshold signing).</summary>
    public static SignatureEntry Sign(string patchDir, string privatePem)
    {
        var manifestPath = ManifestCodec.Find(patchDir)
            ?? throw new PatcherException(PatchErrorCode.PatchNotFound, $"no {ManifestCodec.ManifestFileName} or {ManifestCodec.BinaryManifestFileName} in '{patchDir}'", patchDir);
        var bytes = File.ReadAllBytes(manifestPath);
        // Refuse to sign something the applier would refuse anyway; a manifest listing only changes is checked whole
        // when its base manifest is beside it, else as far as it can be alone.
        var raw = MessagePackManifest.LooksLikeMessagePack(bytes) && MessagePackManifest.PeekFormat(bytes) == MessagePackManifest.Format
            ? MessagePackManifest.ReadRaw(bytes, manifestPath)
            : null;
        var basePath = Path.Join(patchDir, VersionManifest.FileName);
        if (raw is { BaseManifest: { } baseHash })
        {
            if (File.Exists(basePath))
            {
                var baseBytes = File.ReadAllBytes(basePath);
                if (ManifestCodec.Hash(baseBytes) != baseHash)
                    throw new PatcherException(PatchErrorCode.BaseManifestMismatch, $"{VersionManifest.FileName} is not the base manifest the patch names ({baseHash})", basePath);
                ManifestValidator.Validate(MessagePackManifest.Resolve(raw, VersionManifest.Deserialize(baseBytes, basePath), manifestPath), ManifestLimits.Default);
            }
        }
        else
        {
            ManifestValidator.Validate(ManifestCodec.Deserialize(bytes, manifestPath), ManifestLimits.Default);
        }
        var sig = SigningKeys.Sign(bytes, privatePem);
        var sigPath = Path.Join(patchDir, ManifestCodec.SignatureFileName);
        var existing = File.Exists(sigPath)
            ? ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(sigPath), sigPath).Signatures.Where(s => s.KeyId != sig.KeyId)
            : [];
        var envelope = new SignatureEnvelope { Signatures = [.. existing, sig] };
        File.WriteAllBytes(sigPath, ManifestCodec.SerializeEnvelope(envelope));
        return sig;
    }

    private static BlobEntry WriteBlob(string source, ScannedFile file, string outDir, bool compress, CancellationToken ct)
    {
        var dir = Path.Join(outDir, "blobs", file.Sha256[..2]);
        Directory.CreateDirectory(dir);
        // Small or already-compressed content is stored raw; Brotli is kept only when it saves at least 5%.
        if (compress && file.Size >= 512)
        {
            var brPath = Path.Join(dir, file.Sha256 + ".br");
            using (var input = FileOps.Instance.OpenRead(source))
            using (var output = File.Create(brPath))
            using (var brotli = new BrotliStream(output, CompressionLevel.Fastest))
            {
                input.CopyTo(brotli, ContentHash.BufferSize);
            }

            ct.ThrowIfCancellationRequested();
            var stored = new FileInfo(brPath).Length;
            if (stored <= file.Size * 95 / 100)
                return new BlobEntry { Sha256 = file.Sha256, Size = file.Size, Compression = BlobCompression.Brotli, StoredSize = stored };
            File.Delete(brPath);
        }

        var rawPath = Path.Join(dir, file.Sha256);
        File.Copy(source, rawPath, overwrite: true);
        return new BlobEntry { Sha256 = file.Sha256, Size = file.Size, Compression = BlobCompression.None, StoredSize = file.Size };
    }

    private static DateTimeOffset TruncateToSeconds(DateTimeOffset t) =>
        new(t.Ticks - (t.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
}
