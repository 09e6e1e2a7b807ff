using System.IO.Compression;
using Microsoft.Win32.SafeHandles;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;

namespace Patching.Sources;

/// <summary>
/// A patch directory opened for use: the exact manifest bytes and the signature envelope. Nothing is trusted
/// until <see cref="VerifySignature"/> passes, and the manifest is not even parsed before then on the apply
/// path: the JSON parser only ever sees bytes a trusted key signed. (<see cref="Manifest"/> may be read
/// unverified by <c>patchtool inspect</c>, which changes nothing.)
/// </summary>
internal sealed partial class PatchPackage
{
    private readonly Lazy<RawManifest?> _raw;
    private readonly Lazy<(Manifest Manifest, byte[] Bytes)> _manifest;
    private readonly Lazy<string> _manifestHash;
    private readonly Lazy<Dictionary<string, BlobEntry>> _blobs;
    private readonly ManifestLimits _limits;
    private readonly Func<RecordedManifests>? _installedManifest;

    private PatchPackage(string dir, string manifestPath, byte[] bytes, SignatureEnvelope? envelope, ManifestLimits limits, Func<RecordedManifests>? installedManifest)
    {
        Directory = dir;
        ManifestPath = manifestPath;
        SignedBytes = bytes;
        Envelope = envelope;
        _limits = limits;
        _installedManifest = installedManifest;
        _raw = new Lazy<RawManifest?>(ReadRaw);
        _manifest = new Lazy<(Manifest, byte[])>(Compose);
        _manifestHash = new Lazy<string>(() => ManifestCodec.Hash(ManifestBytes));
        _blobs = new Lazy<Dictionary<string, BlobEntry>>(() => Manifest.Blobs.ToDictionary(b => b.Sha256, StringComparer.Ordinal));
    }

    public string Directory { get; }

    /// <summary>The manifest file read: <c>manifest.json</c> (format 1) or <c>manifest.msgpack</c> (format 2).</summary>
    public string ManifestPath { get; }

    /// <summary>How many times a blob was opened and read (each blob once per apply; tests check it).</summary>
    public int BlobReads => Volatile.Read(ref _blobReads);
    private int _blobReads;

    /// <summary>The manifest file's exact bytes: what the signature covers.</summary>
    public byte[] SignedBytes { get; }

    /// <summary>
    /// What the journal keeps for this patch: <see cref="SignedBytes"/>, or for a manifest that lists only changes the
    /// <see cref="ComposedManifest"/> of those bytes and the base version's manifest (which reads as <see cref="Manifest"/>).
    /// </summary>
    public byte[] ManifestBytes => _manifest.Value.Bytes;

    /// <summary>The parsed manifest, composed over the base version when it lists only changes. Throws <see cref="PatcherException"/> when it does not parse.</summary>
    public Manifest Manifest => _manifest.Value.Manifest;
    public SignatureEnvelope? Envelope { get; }

    /// <summary>Hex SHA-256 of <see cref="ManifestBytes"/>: the transaction's identity.</summary>
    public string ManifestHash => _manifestHash.Value;

    /// <summary>Opens a patch directory whose manifest, if it lists only changes, has its base looked up beside it only.</summary>
    public static PatchPackage Open(string dir, ManifestLimits limits) => Open(dir, limits, null);

    /// <summary>
    /// Opens a patch directory. <paramref name="installedManifest"/> gives the manifests the journal records (the
    /// installed version's, and the one a pending transaction installs if recovery rolls it forward); it is asked only
    /// for a manifest that lists only changes, once its signature is checked, as the first place to find the base
    /// version (<see cref="FindBase"/>).
    /// </summary>
    public static PatchPackage Open(string dir, ManifestLimits limits, Func<RecordedManifests>? installedManifest)
    {
        if (!System.IO.Directory.Exists(dir))
            throw new PatcherException(PatchErrorCode.PatchNotFound, $"patch directory '{dir}' does not exist", dir);
        var manifestPath = ManifestCodec.Find(dir)
            ?? throw new PatcherException(PatchErrorCode.PatchNotFound, $"no {ManifestCodec.ManifestFileName} or {ManifestCodec.BinaryManifestFileName} in patch directory '{dir}'", dir);
        var bytes = ReadBounded(manifestPath, limits.MaxManifestBytes, PatchErrorCode.ManifestTooLarge)
            ?? throw new PatcherException(PatchErrorCode.PatchNotFound, $"no {ManifestCodec.ManifestFileName} or {ManifestCodec.BinaryManifestFileName} in patch directory '{dir}'", dir);

        var sigPath = Path.Join(dir, ManifestCodec.SignatureFileName);
        SignatureEnvelope? envelope = null;
        if (ReadBounded(sigPath, limits.MaxSignatureBytes, PatchErrorCode.SignatureInvalid) is { } signature)
            envelope = ManifestCodec.DeserializeEnvelope(signature, sigPath);

        return new PatchPackage(dir, manifestPath, bytes, envelope, limits, installedManifest);
    }

    /// <summary>Checks the signature against the policy, then the manifest's structure and expiry. Returns the verifying key ids.</summary>
    public IReadOnlyList<string> VerifySignature(TrustPolicy policy, ManifestLimits limits, DateTimeOffset now)
    {
        var manifestPath = ManifestPath;
        var keys = policy.Verify(SignedBytes, Envelope, manifestPath);
        ManifestValidator.Validate(Manifest, limits);
        if (Manifest.Expires is { } expires && expires <= now)
            throw new PatcherException(PatchErrorCode.ManifestExpired, $"patch expired at {expires:u}", manifestPath);
        return keys;
    }

    public string BlobPath(BlobEntry blob) => PathRules.Join(Directory, blob.RelativePath);

    /// <summary>Checks every blob is present with its declared stored size (cheap; contents are checked while staging).</summary>
    public void CheckBlobsPresent()
    {
        if (Manifest.Recipes.Count > 0) CheckPayloadPresent();
        foreach (var blob in Manifest.Blobs)
        {
            var path = BlobPath(blob);
            EntryInfo info;
            try
            {
                info = FileOps.Instance.Stat(path);
            }
            catch (PatcherException ex) when (ex.NativeError == NativeErrors.ELOOP)
            {
                throw new PatcherException(PatchErrorCode.PatchFileNotRegular, $"blob {blob.RelativePath} is reached through a symlink loop", path, ex);
            }

            if (info.Kind is EntryKind.Symlink or EntryKind.Other or EntryKind.Directory)
                throw new PatcherException(PatchErrorCode.PatchFileNotRegular, $"blob {blob.RelativePath} is not a regular file ({info.Kind})", path);
            if (info.Kind != EntryKind.File)
                throw new PatcherException(PatchErrorCode.BlobMissing, $"blob {blob.RelativePath} is missing from the patch", path);
            if (info.Size != blob.StoredSize)
                throw new PatcherException(PatchErrorCode.BlobSizeMismatch,
                    $"blob {blob.RelativePath} is {info.Size} bytes, the manifest declares {blob.StoredSize}", path);
        }
    }

    /// <summary>
    /// Streams the uncompressed content of blob <paramref name="sha256"/> into <paramref name="destination"/>,
    /// failing when it is longer or shorter than declared or hashes differently. Never writes more than the
    /// declared size.
    /// </summary>
    public void CopyBlob(string sha256, Stream destination, Action<long>? onBytes, CancellationToken ct)
    {
        Interlocked.Increment(ref _blobReads);
        var blob = _blobs.Value[sha256];
        var path = BlobPath(blob);
        using var raw = OpenBlob(blob, path);
        CopyVerified(blob, raw, destination, onBytes, ct);
    }

    /// <summary>
    /// Verifies a blob stored uncompressed where it lies and hard-links that very file at <paramref name="destination"/>
    /// (through <paramref name="fs"/>, with <paramref name="executable"/> as its executable bit, durably): the install then
    /// shares the blob's data instead of holding a second copy. Returns false, having linked nothing, where that is not
    /// allowed or not possible: a compressed blob, another volume, a blob file that fails <see cref="FileOps.IsPrivateFile"/>
    /// (read nothing then), or a link that failed or named another file after the hash (read once then). The caller then
    /// copies the blob. A blob that fails verification throws, as <see cref="CopyBlob"/> does.
    /// </summary>
    public bool TryLinkBlob(string sha256, IFileOps fs, string destination, bool executable, Action<long>? onBytes, CancellationToken ct)
    {
        var blob = _blobs.Value[sha256];
        if (blob.Compression != BlobCompression.None || !OperatingSystem.IsLinux()) return false;
        var path = BlobPath(blob);
        // The stream owns the handle: disposing it closes the descriptor after the link.
        using var raw = OpenBlob(blob, path);
        var handle = raw.SafeFileHandle;
        if (!FileOps.IsPrivateFile(handle, out var device) || device != fs.Stat(Path.GetDirectoryName(destination)!).Device) return false;
        Interlocked.Increment(ref _blobReads);
        // Hashed through the descriptor that is then linked: what is verified is the file that is installed.
        CopyVerified(blob, raw, Stream.Null, onBytes, ct);
        return fs.TryLinkOpenFile(handle, path, destination, executable);
    }

    /// <summary>
    /// Streams the content of <paramref name="blob"/> from its opened file <paramref name="raw"/> into
    /// <paramref name="destination"/>, checking the stored size, the content size and the hash.
    /// </summary>
    private void CopyVerified(BlobEntry blob, Stream raw, Stream destination, Action<long>? onBytes, CancellationToken ct)
    {
        var path = BlobPath(blob);
        if (raw.Length != blob.StoredSize)
            throw new PatcherException(PatchErrorCode.BlobSizeMismatch, $"blob {blob.RelativePath} is {raw.Length} bytes, declared {blob.StoredSize}", path);
        // The caller owns raw (TryLinkBlob links its descriptor afterwards).
        using var brotli = blob.Compression == BlobCompression.Brotli ? new BrotliStream(raw, CompressionMode.Decompress, leaveOpen: true) : null;
        var content = (Stream?)brotli ?? raw;
        long length;
        string hash;
        try
        {
            (length, hash) = ContentHash.CopyAndHash(content, destination, blob.Size, onBytes, ct);
        }
        catch (InvalidDataException ex)
        {
            throw new PatcherException(PatchErrorCode.BlobHashMismatch, $"blob {blob.RelativePath} is not valid Brotli data", path, ex);
        }

        if (length != blob.Size)
            throw new PatcherException(PatchErrorCode.BlobSizeMismatch,
                $"blob {blob.RelativePath} holds {(length > blob.Size ? "more" : length.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, declared {blob.Size}", path);
        if (hash != blob.Sha256)
            throw new PatcherException(PatchErrorCode.BlobHashMismatch, $"blob {blob.RelativePath} has SHA-256 {hash}, declared {blob.Sha256}", path);
    }

    /// <summary>Reads and checks every blob fully: <c>patchtool verify</c>, and Apply before anything on disk changes.</summary>
    public void VerifyAllBlobs(CancellationToken ct)
    {
        CheckBlobsPresent();
        if (Manifest.Recipes.Count > 0) VerifyPayload(ct);
        Parallelism.ForEach(Manifest.Blobs, ct, blob => CopyBlob(blob.Sha256, Stream.Null, null, ct));
    }

    /// <summary>A blob's file, opened as a regular file without blocking (<see cref="PatchFileOpen"/>).</summary>
    private static FileStream OpenBlob(BlobEntry blob, string path) =>
        PatchFileOpen.OpenRegular(path, $"blob {blob.RelativePath}")
            ?? throw new PatcherException(PatchErrorCode.BlobMissing, $"blob {blob.RelativePath} is missing from the patch", path);

    /// <summary>The whole file at <paramref name="path"/>, opened as a regular file without blocking; null when there is none.</summary>
    private static byte[]? ReadBounded(string path, long max, PatchErrorCode tooLarge)
    {
        using var s = PatchFileOpen.OpenRegular(path, $"'{Path.GetFileName(path)}'");
        if (s is null) return null;
        if (s.Length > max)
            throw new PatcherException(tooLarge, $"'{Path.GetFileName(path)}' is {s.Length} bytes, over the limit of {max}", path);
        var buffer = new byte[s.Length];
        s.ReadExactly(buffer);
        return buffer;
    }
}
