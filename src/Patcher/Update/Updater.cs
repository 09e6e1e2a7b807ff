using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Store;
using Patching.State;
using Patching.Transaction;

namespace Patching.Update;

/// <summary>
/// The update path from a release store: the signed channel pointer, the signed manifest it names, the pieces (from the
/// install where it holds them, from an earlier run, else downloaded), laid out as a patch directory in
/// <c>&lt;state&gt;/downloads/&lt;version&gt;</c> and applied with the usual transaction. A piece is written there under its
/// final name only after its SHA-256 matched, so whatever is found there on a later run is reused (hashed again first:
/// a file renamed before a power cut may not have reached the disk).
/// </summary>
internal static class Updater
{
    public const string DownloadsDirName = "downloads";

    /// <summary>Times one piece is fetched when the bytes hash otherwise (the transport's own retries come on top).</summary>
    private const int PieceAttempts = 2;

    public static async Task<UpdateCheck> CheckAsync(string installDir, IUpdateSource source, UpdateOptions options, CancellationToken ct)
    {
        var (pointer, status, _) = await ReadChannelAsync(installDir, source, options, ct).ConfigureAwait(false);
        return new UpdateCheck(status.InstalledVersion, pointer.Version, IsNewer(pointer, status), pointer.Expires);
    }

    /// <summary>Cancellation surfaces as <see cref="OperationCanceledException"/>; verified downloads are kept for the next run.</summary>
    public static Task<UpdateResult> UpdateAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        UpdateCoreAsync(installDir, source, options, progress, ct);

    private static async Task<UpdateResult> UpdateCoreAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        if (options.MaxParallelDownloads < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxParallelDownloads must be at least 1");
        var (pointer, status, layout) = await ReadChannelAsync(installDir, source, options, ct).ConfigureAwait(false);
        if (!IsNewer(pointer, status))
        {
            PruneDownloads(layout, status.InstalledVersion);
            return new UpdateResult(UpdateStatus.UpToDate, status.InstalledVersion, pointer.Version, 0, 0, 0, 0, null);
        }

        var downloads = CreateDownloads(installDir, ref layout);
        RememberSequence(downloads, pointer);
        var patchDir = Path.Join(downloads, pointer.Version);
        Directory.CreateDirectory(patchDir);
        var package = await FetchManifestAsync(source, options.Apply, pointer.Product, pointer.Version, pointer.ManifestSha256, patchDir, ct).ConfigureAwait(false);

        var counts = await FetchPiecesAsync(installDir, source, options, package, progress, ct).ConfigureAwait(false);
        var apply = await Task.Run(() => TransactionEngine.Apply(installDir, patchDir, options.Apply, progress, ct), CancellationToken.None).ConfigureAwait(false);
        if (apply.Status == ApplyStatus.Busy)
            return new UpdateResult(UpdateStatus.Busy, status.InstalledVersion, pointer.Version, counts.Downloaded, counts.Reused, counts.PiecesDownloaded, counts.PiecesReused, apply);
        TryDelete(patchDir);
        return new UpdateResult(UpdateStatus.Updated, status.InstalledVersion, pointer.Version, counts.Downloaded, counts.Reused, counts.PiecesDownloaded, counts.PiecesReused, apply);
    }

    public static async Task<RepairResult> RepairAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var apply = options.Apply;
        if (apply.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to repair from an unverifiable store", installDir);
        var status = Patcher.Status(installDir, apply);
        if (status.InstalledVersion is null || status.Product is null)
            throw new PatcherException(PatchErrorCode.NotManagedByPatcher, "no version was installed by Patcher here; nothing to repair against (install it with Patcher.UpdateAsync first)", installDir);
        var report = await Task.Run(() => Patcher.Verify(installDir, apply, ct), CancellationToken.None).ConfigureAwait(false);
        if (report.Missing.Count == 0 && report.Modified.Count == 0)
            return new RepairResult(status.InstalledVersion, [], [], 0, 0, null);

        var layout = Layout(installDir, apply);
        var patchDir = Path.Join(CreateDownloads(installDir, ref layout), status.InstalledVersion);
        Directory.CreateDirectory(patchDir);
        var package = await FetchManifestAsync(source, apply, status.Product, status.InstalledVersion, expectedSha256: null, patchDir, ct).ConfigureAwait(false);
        var counts = await FetchPiecesAsync(installDir, source, options, package, progress, ct).ConfigureAwait(false);
        // The same version again: every file is placed from the verified pieces, the intact ones included.
        var result = await Task.Run(() => TransactionEngine.Apply(installDir, patchDir, apply with { AllowDowngrade = true }, progress, ct), CancellationToken.None).ConfigureAwait(false);
        if (result.Status == ApplyStatus.Applied) TryDelete(patchDir);
        return new RepairResult(status.InstalledVersion, report.Missing, report.Modified, counts.Downloaded, counts.PiecesDownloaded, result);
    }

    private static bool IsNewer(ChannelPointer pointer, InstallStatus status) =>
        status.InstalledVersion is null || PatchVersion.Parse(pointer.Version, "version") > PatchVersion.Parse(status.InstalledVersion, "installed version");

    /// <summary>Reads and checks the channel pointer: signature, channel, product, expiry, and against replay.</summary>
    private static async Task<(ChannelPointer, InstallStatus, StateLayout)> ReadChannelAsync(string installDir, IUpdateSource source, UpdateOptions options, CancellationToken ct)
    {
        var apply = options.Apply;
        if (apply.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to follow an unverifiable channel", installDir);
        var status = Patcher.Status(installDir, apply);
        var layout = Layout(installDir, apply);
        var name = SourceNames.Channel(options.Channel);
        var bytes = await source.ReadAllAsync(name, ChannelPointer.MaxBytes, ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no channel '{options.Channel}' ({name})", name);
        var sigName = SourceNames.ChannelSignature(options.Channel);
        var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, apply.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the channel pointer {name} has no signature ({sigName})", sigName);
        using (var policy = TrustPolicy.FromPems(apply.TrustedKeys, apply.SignatureThreshold))
            policy.Verify(bytes, ManifestCodec.DeserializeEnvelope(sig, sigName), name);

        var pointer = ChannelPointer.Parse(bytes, name);
        if (pointer.Channel != options.Channel)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} is signed for channel '{pointer.Channel}', not '{options.Channel}'", name);
        if (status.Product is not null && pointer.Product != status.Product)
            throw new PatcherException(PatchErrorCode.WrongProduct, $"channel '{options.Channel}' is for product '{pointer.Product}' but '{status.Product}' is installed", name);
        _ = PatchVersion.Parse(pointer.Version, "channel version");
        var now = apply.TimeProvider.GetUtcNow();
        if (pointer.Expires <= now)
            throw new PatcherException(PatchErrorCode.ChannelExpired, $"the pointer of channel '{options.Channel}' expired at {pointer.Expires:u} (a stale or replayed pointer)", name);
        var seen = SeenSequence(Path.Join(layout.StateDir, DownloadsDirName), pointer.Channel);
        if (pointer.Sequence < seen)
            throw new PatcherException(PatchErrorCode.ChannelRollback, $"the pointer of channel '{options.Channel}' has sequence {pointer.Sequence}, older than {seen} already seen (a replayed pointer)", name);
        if (status.InstalledVersion is not null && !apply.AllowDowngrade &&
            PatchVersion.Parse(pointer.Version, "channel version") < PatchVersion.Parse(status.InstalledVersion, "installed version"))
            throw new PatcherException(PatchErrorCode.ChannelRollback, $"channel '{options.Channel}' points at {pointer.Version}, older than the installed {status.InstalledVersion} (a replayed pointer)", name);
        return (pointer, status, layout);
    }

    private static StateLayout Layout(string installDir, PatcherOptions options)
    {
        var primary = new StateLayout(installDir, options.StateDirectory);
        var inside = new StateLayout(installDir, Path.Join(installDir, StateLayout.InsideStateName));
        return Directory.Exists(inside.StateDir) ? inside : primary;
    }

    /// <summary>
    /// Makes the download folder in the state directory, as the transaction would make the state directory (durably,
    /// beside the install). Where nothing beside the install can be written, the state goes inside it, where the
    /// transaction then finds it and uses the layered strategy.
    /// </summary>
    private static string CreateDownloads(string installDir, ref StateLayout layout)
    {
        try
        {
            TreeOps.CreateDirectoriesDurably(FileOps.Instance, Path.Join(layout.StateDir, DownloadsDirName));
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.AccessDenied && !layout.IsInsideInstall)
        {
            layout = new StateLayout(installDir, Path.Join(installDir, StateLayout.InsideStateName));
            TreeOps.CreateDirectoriesDurably(FileOps.Instance, Path.Join(layout.StateDir, DownloadsDirName));
        }

        return Path.Join(layout.StateDir, DownloadsDirName);
    }

    private static string SequencePath(string downloads, string channel) => Path.Join(downloads, "channel-" + channel + ".seq");

    private static long SeenSequence(string downloads, string channel)
    {
        var path = SequencePath(downloads, channel);
        return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var seq) ? seq : 0;
    }

    /// <summary>Remembers the highest pointer sequence accepted, so that an older pointer served later is refused.</summary>
    private static void RememberSequence(string downloads, ChannelPointer pointer)
    {
        if (SeenSequence(downloads, pointer.Channel) >= pointer.Sequence) return;
        WriteReplacing(SequencePath(downloads, pointer.Channel), Encoding.ASCII.GetBytes(pointer.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>Fetches (or finds from an earlier run) the manifest the pointer names and its signature, and verifies both.</summary>
    /// <summary>
    /// Fetches (or finds from an earlier run) the manifest of <paramref name="version"/> and its signature, and verifies
    /// both; <paramref name="expectedSha256"/>, when given, is the manifest hash a channel pointer named.
    /// </summary>
    private static async Task<PatchPackage> FetchManifestAsync(IUpdateSource source, PatcherOptions options, string product, string version,
        string? expectedSha256, string patchDir, CancellationToken ct)
    {
        var manifestPath = Path.Join(patchDir, ManifestCodec.ManifestFileName);
        if (!File.Exists(manifestPath) || (expectedSha256 is not null && ManifestCodec.Hash(File.ReadAllBytes(manifestPath)) != expectedSha256))
        {
            var name = SourceNames.Manifest(version);
            var bytes = await source.ReadAllAsync(name, (int)Math.Min(int.MaxValue, options.Limits.MaxManifestBytes), ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no manifest of version {version} ({name})", name);
            if (expectedSha256 is not null && ManifestCodec.Hash(bytes) != expectedSha256)
                throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} hashes to {ManifestCodec.Hash(bytes)}, the channel pointer names {expectedSha256}", name);
            var sigName = SourceNames.ManifestSignature(version);
            var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, options.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the manifest of version {version} has no signature ({sigName})", sigName);
            WriteReplacing(Path.Join(patchDir, ManifestCodec.SignatureFileName), sig);
            WriteReplacing(manifestPath, bytes);
        }

        var package = PatchPackage.Open(patchDir, options.Limits);
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            package.VerifySignature(policy, options.Limits, options.TimeProvider.GetUtcNow());
        var m = package.Manifest;
        if (!m.IsFullPackage || m.Product != product || m.Version != version || m.Blobs.Any(b => b.Compression != BlobCompression.None))
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"the manifest of version {version} is not a store release of {product} {version}", manifestPath);
        return package;
    }

    private sealed record PieceCounts(long Downloaded, long Reused, int PiecesDownloaded, int PiecesReused);

    /// <summary>
    /// Makes every piece of the manifest present and verified in the patch directory: kept from an earlier run, cut
    /// from the install's files (the same content-defined chunking the store used finds them wherever they moved), or
    /// downloaded, several at a time.
    /// </summary>
    private static async Task<PieceCounts> FetchPiecesAsync(string installDir, IUpdateSource source, UpdateOptions options,
        PatchPackage package, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var blobs = package.Manifest.Blobs;
        long reused = 0;
        var piecesReused = 0;

        // Pieces of an earlier run: hashed again, a bad one deleted and fetched anew.
        var missing = new ConcurrentDictionary<string, BlobEntry>(StringComparer.Ordinal);
        Parallelism.ForEach(blobs, ct, b =>
        {
            var path = package.BlobPath(b);
            if (File.Exists(path) && new FileInfo(path).Length == b.Size && ContentHash.OfFile(path, ct) == b.Sha256)
            {
                Interlocked.Add(ref reused, b.Size);
                Interlocked.Increment(ref piecesReused);
                return;
            }

            missing[b.Sha256] = b;
        });

        // Pieces the install holds, in any file, at any offset: each chunk's SHA-256 is the proof.
        if (!missing.IsEmpty)
        {
            var files = TreeOps.Walk(FileOps.Instance, installDir, rel => rel == StateLayout.InsideStateName)
                .Where(e => e.Info.Kind == EntryKind.File && e.Info.Size > 0).ToList();
            Parallelism.ForEach(files, ct, e =>
            {
                using var input = FileOps.Instance.OpenRead(PathRules.Join(installDir, e.Path));
                Chunker.Split(input, (_, chunk) =>
                {
                    if (missing.IsEmpty) return;
                    var sha = Convert.ToHexStringLower(SHA256.HashData(chunk));
                    if (missing.TryRemove(sha, out var blob))
                    {
                        WritePiece(package.BlobPath(blob), chunk);
                        Interlocked.Add(ref reused, blob.Size);
                        Interlocked.Increment(ref piecesReused);
                    }
                }, ct);
            });
        }

        // The rest from the source, largest first.
        var remote = missing.Values.OrderByDescending(b => b.Size).ThenBy(b => b.Sha256, StringComparer.Ordinal).ToList();
        var total = remote.Sum(b => b.Size);
        long downloaded = 0;
        var done = 0;
        progress?.Report(new PatchProgress(PatchPhase.Downloading, 0, remote.Count, 0, total));
        await Parallel.ForEachAsync(remote, new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelDownloads, CancellationToken = ct }, async (blob, token) =>
        {
            var name = SourceNames.Blob(blob.Sha256);
            for (var attempt = 1; ; attempt++)
            {
                var bytes = await source.ReadAsync(name, 0, checked((int)blob.Size), token).ConfigureAwait(false);
                if (bytes.Length == blob.Size && Convert.ToHexStringLower(SHA256.HashData(bytes)) == blob.Sha256)
                {
                    WritePiece(package.BlobPath(blob), bytes);
                    break;
                }

                if (attempt >= PieceAttempts)
                    throw new PatcherException(PatchErrorCode.DownloadCorrupt, $"piece {blob.Sha256} downloaded {attempt} times, never with its signed SHA-256", name);
            }

            var bytesNow = Interlocked.Add(ref downloaded, blob.Size);
            progress?.Report(new PatchProgress(PatchPhase.Downloading, Interlocked.Increment(ref done), remote.Count, bytesNow, total));
        }).ConfigureAwait(false);
        return new PieceCounts(downloaded, reused, remote.Count, piecesReused);
    }

    /// <summary>A verified piece under its final name; a temporary name until complete, so a kill never leaves half a piece there.</summary>
    private static void WritePiece(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        WriteReplacing(path, bytes);
    }

    private static void WriteReplacing(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + "." + StateLayout.RandomTag() + ".tmp";
        File.WriteAllBytes(temp, bytes.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Deletes the download folders of versions not newer than <paramref name="installed"/>. An update killed after its
    /// commit but before it removed its folder leaves every piece of that version there; the next run finds the install
    /// up to date, and this is where that folder goes. Folders of newer versions are kept: they are a resumable download.
    /// </summary>
    private static void PruneDownloads(StateLayout layout, string? installed)
    {
        var downloads = Path.Join(layout.StateDir, DownloadsDirName);
        if (installed is null || !Directory.Exists(downloads)) return;
        var current = PatchVersion.Parse(installed, "installed version");
        foreach (var dir in Directory.EnumerateDirectories(downloads))
        {
            if (PatchVersion.TryParse(Path.GetFileName(dir), out var version) && version <= current) TryDelete(dir);
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the next update, which reuses or replaces what it finds.
        }
    }
}
