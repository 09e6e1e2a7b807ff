using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Patching.Building;
using Patching.Deltas;
using Patching.IO;
using Patching.Journal;
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

        var store = await FetchIndexAsync(source, options.Apply, package, ct).ConfigureAwait(false);
        var plan = LocatePieces(installDir, package, store, ct);
        long deltaBytes = 0;
        if (status.InstalledVersion is not null &&
            await FindDeltaChainAsync(source, options.Apply, pointer, store.Deltas, status.InstalledVersion, ct).ConfigureAwait(false) is { } chain)
        {
            // The deltas only when together they cost fewer bytes than the pieces the install lacks: never more than the full version.
            var chainCost = chain.Sum(step => step.Delta.Bytes - BytesPresent(Path.Join(patchDir, DeltaDirPrefix + step.Delta.From)));
            if (chainCost < plan.RemoteStoredBytes)
            {
                ApplyResult? last = null;
                foreach (var (to, delta) in chain)
                {
                    var outcome = await TryDeltaAsync(installDir, source, options, pointer.Product, to, delta, Path.Join(patchDir, DeltaDirPrefix + delta.From), progress, ct).ConfigureAwait(false);
                    if (outcome is null)
                    {
                        last = null;
                        break;
                    }

                    deltaBytes += outcome.Downloaded;
                    last = outcome.Apply;
                    if (last.Status == ApplyStatus.Busy)
                        return new UpdateResult(UpdateStatus.Busy, status.InstalledVersion, pointer.Version, deltaBytes, 0, 0, 0, last) { DeltaFrom = status.InstalledVersion };
                }

                if (last is not null)
                {
                    TryDelete(patchDir);
                    return new UpdateResult(UpdateStatus.Updated, status.InstalledVersion, pointer.Version, deltaBytes, 0, 0, 0, last) { DeltaFrom = status.InstalledVersion };
                }

                // A step was refused before its commit; the steps before it are committed. The pieces are planned again
                // from the install as it is now.
                plan = LocatePieces(installDir, package, store, ct);
            }
        }

        var counts = await MaterializeAsync(source, options, package, store, plan, progress, ct).ConfigureAwait(false);
        var apply = await Task.Run(() => TransactionEngine.Apply(installDir, patchDir, options.Apply, progress, ct), CancellationToken.None).ConfigureAwait(false);
        var downloaded = counts.Downloaded + deltaBytes;
        if (apply.Status == ApplyStatus.Busy)
            return new UpdateResult(UpdateStatus.Busy, status.InstalledVersion, pointer.Version, downloaded, counts.Reused, counts.PiecesDownloaded, counts.PiecesReused, apply);
        TryDelete(patchDir);
        return new UpdateResult(UpdateStatus.Updated, status.InstalledVersion, pointer.Version, downloaded, counts.Reused, counts.PiecesDownloaded, counts.PiecesReused, apply);
    }

    public static async Task<RepairResult> RepairAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var apply = options.Apply;
        if (apply.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to repair from an unverifiable store", installDir);
        var status = Patcher.Status(installDir, apply);
        if (status.InstalledVersion is null || status.Product is null)
            throw new PatcherException(PatchErrorCode.NotManagedByPatcher, "no version was installed by Patcher here; nothing to repair against (install it with Patcher.UpdateAsync first)", installDir);
        var layout = Layout(installDir, apply);
        var report = options.FullRepair
            ? await Task.Run(() => Patcher.Verify(installDir, apply, ct), CancellationToken.None).ConfigureAwait(false)
            : QuickCheck(installDir, layout);
        if (report.Missing.Count == 0 && report.Modified.Count == 0)
            return new RepairResult(status.InstalledVersion, [], [], 0, 0, null);

        var patchDir = Path.Join(CreateDownloads(installDir, ref layout), status.InstalledVersion);
        Directory.CreateDirectory(patchDir);
        var package = await FetchManifestAsync(source, apply, status.Product, status.InstalledVersion, expectedSha256: null, patchDir, ct).ConfigureAwait(false);
        var store = await FetchIndexAsync(source, apply, package, ct).ConfigureAwait(false);
        var counts = await MaterializeAsync(source, options, package, store, LocatePieces(installDir, package, store, ct), progress, ct).ConfigureAwait(false);
        // The same version again: every file is placed from the verified pieces, the intact ones included.
        var result = await Task.Run(() => TransactionEngine.Apply(installDir, patchDir, apply with { AllowDowngrade = true }, progress, ct), CancellationToken.None).ConfigureAwait(false);
        if (result.Status == ApplyStatus.Applied) TryDelete(patchDir);
        return new RepairResult(status.InstalledVersion, report.Missing, report.Modified, counts.Downloaded, counts.PiecesDownloaded, result);
    }

    /// <summary>
    /// The quick check of a repair: every file of the installed version, as the journal recorded its manifest, must exist
    /// as a regular file of the recorded size. One stat per file and nothing read, so a deleted or truncated file is found
    /// at once; a byte changed in place is not (<see cref="UpdateOptions.FullRepair"/> hashes).
    /// </summary>
    private static VerifyReport QuickCheck(string installDir, StateLayout layout)
    {
        Manifest manifest;
        using (var journal = File.Exists(layout.JournalPath) ? JournalStore.OpenForReading(layout.JournalPath, layout.InstallDir) : null)
        {
            var installed = journal?.Installed()
                ?? throw new PatcherException(PatchErrorCode.NotManagedByPatcher, $"the journal at '{layout.JournalPath}' records no installed version, so there is nothing to repair against", installDir);
            manifest = ManifestCodec.Deserialize(installed.Manifest);
        }

        var missing = new List<string>();
        var modified = new List<string>();
        foreach (var f in manifest.Files)
        {
            var info = new FileInfo(PathRules.Join(installDir, f.Path));
            if (!info.Exists) missing.Add(f.Path);
            else if (info.LinkTarget is not null || info.Length != f.Size) modified.Add(f.Path);
        }

        return new VerifyReport(manifest.Version, manifest.Files.Count, missing, modified);
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

    /// <summary>How a version's pieces are stored: each one's stored size and name (null sizes: raw pieces of a store without indexes), and its deltas.</summary>
    private sealed record StoreLayoutInfo(Dictionary<string, long>? StoredSizes, IReadOnlyList<StoredDelta> Deltas)
    {
        public long StoredSize(BlobEntry blob) => StoredSizes is null ? blob.Size : StoredSizes[blob.Sha256];

        public string Name(BlobEntry blob) => StoredSizes is null ? SourceNames.Blob(blob.Sha256) : SourceNames.Piece(blob.Sha256);
    }

    /// <summary>
    /// Reads and verifies the version's signed index (its pieces' stored sizes, its deltas). A store written before pieces
    /// were compressed has none: its pieces are read raw from <c>blobs/</c>.
    /// </summary>
    private static async Task<StoreLayoutInfo> FetchIndexAsync(IUpdateSource source, PatcherOptions options, PatchPackage package, CancellationToken ct)
    {
        var index = await FetchIndexAsync(source, options, package.Manifest.Product, package.Manifest.Version, ct).ConfigureAwait(false);
        return index is null
            ? new StoreLayoutInfo(null, [])
            : new StoreLayoutInfo(index.CheckAgainst(package.Manifest, package.ManifestHash, SourceNames.Index(package.Manifest.Version)), index.Deltas);
    }

    /// <summary>The signed index of <paramref name="version"/>, verified and checked to describe it; null when the store has none.</summary>
    private static async Task<StoreIndex?> FetchIndexAsync(IUpdateSource source, PatcherOptions options, string product, string version, CancellationToken ct)
    {
        var name = SourceNames.Index(version);
        var bytes = await source.ReadAllAsync(name, StoreIndex.MaxBytes, ct).ConfigureAwait(false);
        if (bytes is null) return null;
        var sigName = SourceNames.IndexSignature(version);
        var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, options.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the index of version {version} has no signature ({sigName})", sigName);
        using (var policy = TrustPolicy.FromPems(options.TrustedKeys, options.SignatureThreshold))
            policy.Verify(bytes, ManifestCodec.DeserializeEnvelope(sig, sigName), name);
        var index = StoreIndex.Parse(bytes, name);
        if (index.Product != product || index.Version != version)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} describes {index.Product} {index.Version}, not {product} {version}", name);
        return index;
    }

    /// <summary>Indexes of intermediate versions read at most while looking for a chain of deltas.</summary>
    private const int MaxChainIndexes = 16;

    /// <summary>
    /// The cheapest chain of stored deltas from <paramref name="installed"/> to the channel's version, in bytes, or null
    /// when there is none. The deltas to a version are listed in its index; the search walks back from the latest version,
    /// newest first (so a version's cost to the latest is final when its own deltas are read), reading the signed index
    /// of each version some delta starts from, down to the installed one, at most <see cref="MaxChainIndexes"/> of them.
    /// </summary>
    private static async Task<IReadOnlyList<(string To, StoredDelta Delta)>?> FindDeltaChainAsync(IUpdateSource source, PatcherOptions options,
        ChannelPointer pointer, IReadOnlyList<StoredDelta> latestDeltas, string installed, CancellationToken ct)
    {
        var floor = PatchVersion.Parse(installed, "installed version");
        var best = new Dictionary<string, (long Cost, string? Next, StoredDelta? Step)>(StringComparer.Ordinal) { [pointer.Version] = (0, null, null) };
        var pending = new List<string> { pointer.Version };
        var reads = 0;
        while (pending.Count > 0)
        {
            var version = pending.MaxBy(v => PatchVersion.Parse(v, "version"))!;
            pending.Remove(version);
            IReadOnlyList<StoredDelta> deltas;
            if (version == pointer.Version) deltas = latestDeltas;
            else if (++reads > MaxChainIndexes) break;
            else deltas = (await FetchIndexAsync(source, options, pointer.Product, version, ct).ConfigureAwait(false))?.Deltas ?? [];

            foreach (var delta in deltas)
            {
                if (!PatchVersion.TryParse(delta.From, out var from) || from < floor || from >= PatchVersion.Parse(version, "version")) continue;
                var cost = best[version].Cost + delta.Bytes;
                if (best.TryGetValue(delta.From, out var known) && known.Cost <= cost) continue;
                best[delta.From] = (cost, version, delta);
                if (delta.From != installed && !pending.Contains(delta.From)) pending.Add(delta.From);
            }
        }

        if (!best.ContainsKey(installed)) return null;
        var chain = new List<(string, StoredDelta)>();
        for (var at = installed; at != pointer.Version; at = best[at].Next!)
            chain.Add((best[at].Next!, best[at].Step!));
        return chain;
    }

    /// <summary>Where each piece of the version will come from: already in the download folder, in a file of the install, or the source.</summary>
    private sealed record PiecePlan(long ReusedEarlier, int PiecesEarlier, IReadOnlyDictionary<string, (string Path, long Offset)> InInstall,
        IReadOnlyList<BlobEntry> Remote, long RemoteStoredBytes);

    /// <summary>
    /// Finds every piece of the manifest that need not be downloaded: kept from an earlier run (hashed again, a bad one
    /// deleted), or in a file of the install (the same content-defined chunking the store used finds it wherever it
    /// moved; only its place is noted here, nothing is written until the route is chosen).
    /// </summary>
    private static PiecePlan LocatePieces(string installDir, PatchPackage package, StoreLayoutInfo store, CancellationToken ct)
    {
        var blobs = package.Manifest.Blobs;
        long reused = 0;
        var piecesReused = 0;
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

        var located = new ConcurrentDictionary<string, (string, long)>(StringComparer.Ordinal);
        if (!missing.IsEmpty)
        {
            var files = TreeOps.Walk(FileOps.Instance, installDir, rel => rel == StateLayout.InsideStateName)
                .Where(e => e.Info.Kind == EntryKind.File && e.Info.Size > 0).ToList();
            Parallelism.ForEach(files, ct, e =>
            {
                var path = PathRules.Join(installDir, e.Path);
                using var input = FileOps.Instance.OpenRead(path);
                Chunker.Split(input, (offset, chunk) =>
                {
                    if (missing.IsEmpty) return;
                    var sha = Convert.ToHexStringLower(SHA256.HashData(chunk));
                    if (missing.TryRemove(sha, out _)) located[sha] = (path, offset);
                }, ct);
            });
        }

        var remote = missing.Values.OrderByDescending(b => b.Size).ThenBy(b => b.Sha256, StringComparer.Ordinal).ToList();
        return new PiecePlan(reused, piecesReused, located, remote, remote.Sum(store.StoredSize));
    }

    /// <summary>
    /// Makes every piece of the plan present and verified in the patch directory: those found in the install copied
    /// (read again and hashed again: the file may have changed since), the rest downloaded several at a time, each frame
    /// decoded into at most the piece's size and checked against its signed SHA-256.
    /// </summary>
    private static async Task<PieceCounts> MaterializeAsync(IUpdateSource source, UpdateOptions options, PatchPackage package, StoreLayoutInfo store,
        PiecePlan plan, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var bySha = package.Manifest.Blobs.ToDictionary(b => b.Sha256, StringComparer.Ordinal);
        var reused = plan.ReusedEarlier;
        var piecesReused = plan.PiecesEarlier;
        var changed = new ConcurrentBag<BlobEntry>();
        Parallelism.ForEach(plan.InInstall.GroupBy(kv => kv.Value.Path).ToList(), ct, group =>
        {
            using var handle = File.OpenHandle(group.Key);
            foreach (var (sha, (_, offset)) in group)
            {
                var blob = bySha[sha];
                var bytes = new byte[blob.Size];
                if (RandomAccess.Read(handle, bytes, offset) == blob.Size && Convert.ToHexStringLower(SHA256.HashData(bytes)) == sha)
                {
                    WritePiece(package.BlobPath(blob), bytes);
                    Interlocked.Add(ref reused, blob.Size);
                    Interlocked.Increment(ref piecesReused);
                }
                else
                {
                    changed.Add(blob);
                }
            }
        });

        var remote = plan.Remote.Concat(changed).ToList();
        var total = remote.Sum(store.StoredSize);
        progress = DownloadProgress.Start(progress, options.Apply.TimeProvider);
        long downloaded = 0;
        var done = 0;
        progress?.Report(new PatchProgress(PatchPhase.Downloading, 0, remote.Count, 0, total));
        await Parallel.ForEachAsync(remote, new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelDownloads, CancellationToken = ct }, async (blob, token) =>
        {
            var name = store.Name(blob);
            var stored = store.StoredSize(blob);
            for (var attempt = 1; ; attempt++)
            {
                var bytes = await source.ReadAsync(name, 0, checked((int)stored), token).ConfigureAwait(false);
                if (Decode(store, blob, bytes, name) is { } raw && Convert.ToHexStringLower(SHA256.HashData(raw.Span)) == blob.Sha256)
                {
                    WritePiece(package.BlobPath(blob), raw.Span);
                    break;
                }

                if (attempt >= PieceAttempts)
                    throw new PatcherException(PatchErrorCode.DownloadCorrupt, $"piece {blob.Sha256} downloaded {attempt} times, never with its signed SHA-256", name);
            }

            var bytesNow = Interlocked.Add(ref downloaded, stored);
            progress?.Report(new PatchProgress(PatchPhase.Downloading, Interlocked.Increment(ref done), remote.Count, bytesNow, total));
        }).ConfigureAwait(false);
        return new PieceCounts(downloaded, reused, remote.Count, piecesReused);
    }

    /// <summary>
    /// The piece's raw bytes from what the source sent, or null when they cannot be: a frame that is not valid zstd or
    /// decodes to another length (never more than the piece's size plus one byte is produced: a hostile frame cannot
    /// blow up memory), or a raw piece of another length.
    /// </summary>
    private static ReadOnlyMemory<byte>? Decode(StoreLayoutInfo store, BlobEntry blob, byte[] bytes, string name)
    {
        if (store.StoredSizes is null) return bytes.Length == blob.Size ? bytes : null;
        try
        {
            return ZstdPatch.Decompress(default, bytes, checked((int)blob.Size), name);
        }
        catch (PatcherException ex) when (ex.Code is PatchErrorCode.DeltaCorrupt or PatchErrorCode.DeltaOutputTooLong or PatchErrorCode.DeltaWindowTooLarge)
        {
            return null;
        }
    }

    private const string DeltaDirPrefix = "delta-";

    /// <summary>Segment of a delta's payload fetched per request (and kept on disk before the next, so a resume loses at most one).</summary>
    private const int DeltaSegmentBytes = 1024 * 1024;

    private const string PartialSuffix = ".part";

    /// <summary>Bytes of a delta already in <paramref name="deltaDir"/> from an earlier run.</summary>
    private static long BytesPresent(string deltaDir) =>
        Directory.Exists(deltaDir) ? Directory.EnumerateFiles(deltaDir).Sum(f => new FileInfo(f).Length) : 0;

    private sealed record DeltaOutcome(long Downloaded, ApplyResult Apply);

    /// <summary>
    /// Moves the install one step of a chain through a stored format 2 delta: its signed manifest (which must lead from
    /// <see cref="StoredDelta.From"/> to <paramref name="version"/>), then its payload in segments appended to a partial file (a resumed run
    /// continues where the last one stopped), then the usual transaction, which checks every base range and every
    /// decoded byte against the signed hashes. Returns null when the delta does not fit the install or its payload
    /// proves bad before anything changed (a refusal of the transaction): the caller then takes the pieces.
    /// </summary>
    private static async Task<DeltaOutcome?> TryDeltaAsync(string installDir, IUpdateSource source, UpdateOptions options, string product, string version,
        StoredDelta delta, string deltaDir, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var apply = options.Apply;
        var name = SourceNames.DeltaDir(version, delta.From);
        Directory.CreateDirectory(deltaDir);
        long downloaded = 0;
        var manifestPath = Path.Join(deltaDir, ManifestCodec.BinaryManifestFileName);
        if (!File.Exists(manifestPath))
        {
            var sigName = name + "/" + ManifestCodec.SignatureFileName;
            var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, apply.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store lists a delta from {delta.From} but has no {sigName}", sigName);
            var manifestName = name + "/" + ManifestCodec.BinaryManifestFileName;
            var bytes = await source.ReadAllAsync(manifestName, (int)Math.Min(int.MaxValue, apply.Limits.MaxManifestBytes), ct).ConfigureAwait(false)
                ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store lists a delta from {delta.From} but has no {manifestName}", manifestName);
            WriteReplacing(Path.Join(deltaDir, ManifestCodec.SignatureFileName), sig);
            WriteReplacing(manifestPath, bytes);
            downloaded += sig.Length + bytes.Length;
        }

        var package = PatchPackage.Open(deltaDir, apply.Limits);
        using (var policy = TrustPolicy.FromPems(apply.TrustedKeys, apply.SignatureThreshold))
            package.VerifySignature(policy, apply.Limits, apply.TimeProvider.GetUtcNow());
        var m = package.Manifest;
        if (m.Product != product || m.Version != version || m.FromVersion != delta.From || m.PayloadSize > delta.Bytes)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"the delta in {name} is not {product} {delta.From} -> {version} of at most {delta.Bytes} bytes", name);

        var payloadPath = Path.Join(deltaDir, ReleaseStore.DeltaPayloadName);
        if (m.PayloadSize > 0 && !File.Exists(payloadPath))
        {
            var partPath = payloadPath + PartialSuffix;
            await using (var part = new FileStream(partPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None))
            {
                var have = Math.Min(part.Length, m.PayloadSize);
                part.SetLength(have);
                part.Seek(have, SeekOrigin.Begin);
                var segments = (int)((m.PayloadSize + DeltaSegmentBytes - 1) / DeltaSegmentBytes);
                var download = DownloadProgress.Start(progress, apply.TimeProvider);
                download?.Report(new PatchProgress(PatchPhase.Downloading, (int)(have / DeltaSegmentBytes), segments, 0, m.PayloadSize - have));
                for (var offset = have; offset < m.PayloadSize;)
                {
                    var length = (int)Math.Min(DeltaSegmentBytes, m.PayloadSize - offset);
                    var bytes = await source.ReadAsync(name + "/" + ReleaseStore.DeltaPayloadName, offset, length, ct).ConfigureAwait(false);
                    if (bytes.Length != length)
                        throw new PatcherException(PatchErrorCode.SourceUnavailable, $"{name}/{ReleaseStore.DeltaPayloadName} answered {bytes.Length} bytes, {length} asked at {offset}", name);
                    await part.WriteAsync(bytes, ct).ConfigureAwait(false);
                    await part.FlushAsync(ct).ConfigureAwait(false);
                    offset += length;
                    downloaded += length;
                    download?.Report(new PatchProgress(PatchPhase.Downloading, (int)((offset + DeltaSegmentBytes - 1) / DeltaSegmentBytes), segments, offset - have, m.PayloadSize - have));
                }

                part.Flush(flushToDisk: true);
            }

            File.Move(partPath, payloadPath, overwrite: true);
        }

        try
        {
            var result = await Task.Run(() => TransactionEngine.Apply(installDir, deltaDir, apply, progress, ct), CancellationToken.None).ConfigureAwait(false);
            return new DeltaOutcome(downloaded, result);
        }
        catch (PatcherException ex) when (!ex.NewVersionInPlace && ((int)ex.Code is >= 100 and < 200 || ex.Code == PatchErrorCode.BaseMismatch))
        {
            // The install does not match the delta's base (damaged, or changed by hand), or the delta is bad: nothing was
            // committed, and the pieces route below checks everything it reuses.
            TryDelete(deltaDir);
            return null;
        }
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
