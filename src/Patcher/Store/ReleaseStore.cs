using System.Security.Cryptography;
using Patching.Building;
using Patching.IO;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;

namespace Patching.Store;

/// <summary>What <c>patchtool publish</c> asks for.</summary>
internal sealed record PublishRequest
{
    public required string StoreDir { get; init; }
    public required string TreeDir { get; init; }
    public required string Product { get; init; }
    public required string Version { get; init; }
    public required string PrivateKeyPem { get; init; }
    /// <summary>The channel to point at this version, or null to only add the version.</summary>
    public string? Channel { get; init; }
    /// <summary>How long the channel pointer is believed.</summary>
    public TimeSpan ChannelLifetime { get; init; } = TimeSpan.FromDays(30);
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>An older published version to build a format 2 delta from, stored beside this version.</summary>
    public string? DeltaFrom { get; init; }
    /// <summary>zstd level of the pieces and the delta (1..22).</summary>
    public int Level { get; init; } = PatchBuilder.DefaultLevel;
}

/// <param name="ManifestSha256">SHA-256 of the version's manifest bytes.</param>
/// <param name="Pieces">Distinct pieces the version consists of.</param>
/// <param name="PiecesAdded">Pieces the store did not hold before (the rest are shared with versions already published).</param>
/// <param name="BytesAdded">Bytes of those new pieces.</param>
/// <param name="TotalBytes">Raw bytes of all the version's distinct pieces.</param>
/// <param name="StoredBytes">Compressed bytes of all the version's distinct pieces (what a fresh install downloads).</param>
/// <param name="DeltaBytes">Bytes of the delta from <see cref="PublishRequest.DeltaFrom"/> (manifest, signature, payload), when one was built.</param>
internal sealed record PublishResult(string ManifestSha256, int Pieces, int PiecesAdded, long BytesAdded, long TotalBytes, long StoredBytes, long? DeltaBytes);

/// <summary>
/// A release store: a folder that a static web server, a CDN or a share serves as it is.
/// <code>
/// pieces/ab/abcd….zst                   pieces: a zstd frame each, named by the SHA-256 of the raw bytes, shared by every version
/// versions/&lt;v&gt;/manifest.json, .sig      a signed full package of version v whose files are lists of pieces
/// versions/&lt;v&gt;/index.json, .sig         the signed <see cref="StoreIndex"/>: each piece's stored size, the deltas to v
/// versions/&lt;v&gt;/deltas/&lt;from&gt;/          a signed format 2 patch from an older version (optional)
/// channels/&lt;c&gt;.json, .sig              the signed pointer to the latest version of channel c
/// </code>
/// Files are cut into content-defined chunks (<see cref="Chunker"/>), so a piece survives an insertion elsewhere in its
/// file and an update from any older version fetches only the pieces the install does not hold. A version's manifest is
/// an ordinary format 1 full package whose blobs are the raw pieces (so that a piece found in the install is the blob
/// byte for byte): the update decodes each downloaded frame, lays the pieces out as a patch directory and applies it
/// with the usual transaction. Compression is the store's business, named by the index, not the manifest's.
/// </summary>
internal static class ReleaseStore
{
    public static PublishResult Publish(PublishRequest request, CancellationToken ct = default)
    {
        _ = PatchVersion.Parse(request.Version, "version");
        var manifestName = SourceNames.Manifest(request.Version);
        if (request.Channel is not null) _ = SourceNames.Channel(request.Channel);
        if (request.Level is < 1 or > 22) throw new ArgumentException($"zstd level {request.Level} is out of range (1 to 22)");
        if (request.DeltaFrom is not null)
        {
            _ = SourceNames.DeltaDir(request.Version, request.DeltaFrom);
            if (PatchVersion.Parse(request.DeltaFrom, "delta-from version") >= PatchVersion.Parse(request.Version, "version"))
                throw new PatcherException(PatchErrorCode.NotNewer, $"version {request.Version} is not newer than the delta's base {request.DeltaFrom}");
            if (!File.Exists(Path.Join(request.StoreDir, SourceNames.Manifest(request.DeltaFrom))))
                throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no version {request.DeltaFrom} to build a delta from", request.StoreDir);
        }

        var tree = TreeScanner.Scan(request.TreeDir, ct: ct);
        foreach (var path in tree.Files.Select(f => f.Path).Concat(tree.Directories))
        {
            var reason = PathRules.Check(path);
            if (reason is not null) throw new PatcherException(PatchErrorCode.UnsafePath, $"cannot publish '{path}': {reason}", path);
        }

        // Pieces of every file, in parallel; each new piece written once under its hash.
        var parts = new List<ContentPart>[tree.Files.Count];
        var added = 0;
        long addedBytes = 0;
        var stored = new System.Collections.Concurrent.ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        Parallelism.ForEach(Enumerable.Range(0, tree.Files.Count), ct, i =>
        {
            var list = new List<ContentPart>();
            if (tree.Files[i].Size > 0)
            {
                using var input = FileOps.Instance.OpenRead(PathRules.Join(request.TreeDir, tree.Files[i].Path));
                Chunker.Split(input, (_, chunk) =>
                {
                    var sha = Convert.ToHexStringLower(SHA256.HashData(chunk));
                    list.Add(new ContentPart { Sha256 = sha, Size = chunk.Length });
                    if (stored.ContainsKey(sha)) return;
                    var (size, isNew) = WritePieceIfAbsent(request.StoreDir, sha, chunk, request.Level);
                    if (stored.TryAdd(sha, size) && isNew)
                    {
                        Interlocked.Increment(ref added);
                        Interlocked.Add(ref addedBytes, chunk.Length);
                    }
                }, ct);
            }

            parts[i] = list;
        });

        var files = tree.Files.Select((f, i) => new TargetFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256, Executable = f.Executable, Parts = parts[i] }).ToList();
        var blobs = parts.SelectMany(p => p).DistinctBy(p => p.Sha256).OrderBy(p => p.Sha256, StringComparer.Ordinal)
            .Select(p => new BlobEntry { Sha256 = p.Sha256, Size = p.Size, Compression = BlobCompression.None, StoredSize = p.Size }).ToList();
        var manifest = new Manifest
        {
            Product = request.Product,
            Version = request.Version,
            Created = request.Time.GetUtcNow(),
            Directories = tree.Directories,
            Files = files,
            Base = [],
            Blobs = blobs,
        };
        ManifestValidator.Validate(manifest, ManifestLimits.Default);
        var bytes = ManifestCodec.Serialize(manifest);
        var manifestSha = ManifestCodec.Hash(bytes);

        var manifestPath = Path.Join(request.StoreDir, manifestName);
        if (File.Exists(manifestPath))
        {
            // A version is immutable once published: clients may hold its pieces and its manifest hash.
            var existing = ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath), manifestPath);
            if (!existing.Files.Select(f => (f.Path, f.Sha256, f.Executable)).SequenceEqual(files.Select(f => (f.Path, f.Sha256, f.Executable))) ||
                !existing.Directories.SequenceEqual(tree.Directories) || existing.Product != request.Product)
                throw new PatcherException(PatchErrorCode.ReleaseExists, $"version {request.Version} is already published with other content", manifestPath);
            bytes = File.ReadAllBytes(manifestPath);
            manifestSha = ManifestCodec.Hash(bytes);
        }
        else
        {
            var signature = SigningKeys.Sign(bytes, request.PrivateKeyPem);
            WriteAtomically(Path.Join(request.StoreDir, SourceNames.ManifestSignature(request.Version)),
                ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
            WriteAtomically(manifestPath, bytes);
        }

        var deltaBytes = request.DeltaFrom is null ? (long?)null : BuildDelta(request, ct);
        WriteIndex(request, manifestSha, blobs.Select(b => new StoredPiece(b.Sha256, stored[b.Sha256])).ToList(), deltaBytes);
        if (request.Channel is not null) PointChannel(request, manifestSha);
        return new PublishResult(manifestSha, blobs.Count, added, addedBytes, blobs.Sum(b => b.Size), stored.Values.Sum(), deltaBytes);
    }

    /// <summary>
    /// Writes the version's signed index: its pieces' stored sizes and its deltas (those of an earlier index of this
    /// version kept, the one just built added). The signature first, as for the channel pointer.
    /// </summary>
    private static void WriteIndex(PublishRequest request, string manifestSha, IReadOnlyList<StoredPiece> pieces, long? deltaBytes)
    {
        var path = Path.Join(request.StoreDir, SourceNames.Index(request.Version));
        var deltas = new List<StoredDelta>();
        if (File.Exists(path))
            deltas.AddRange(StoreIndex.Parse(File.ReadAllBytes(path), path).Deltas.Where(d => d.From != request.DeltaFrom));
        if (deltaBytes is { } bytes) deltas.Add(new StoredDelta(request.DeltaFrom!, bytes));
        var index = new StoreIndex
        {
            Product = request.Product, Version = request.Version, ManifestSha256 = manifestSha, Encoding = StoreIndex.Zstd, Pieces = pieces,
            Deltas = [.. deltas.OrderBy(d => PatchVersion.Parse(d.From, "version"))],
        };
        var indexBytes = index.Serialize();
        var signature = SigningKeys.Sign(indexBytes, request.PrivateKeyPem);
        WriteAtomically(Path.Join(request.StoreDir, SourceNames.IndexSignature(request.Version)), ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
        WriteAtomically(path, indexBytes);
    }

    /// <summary>
    /// Builds the format 2 patch from <see cref="PublishRequest.DeltaFrom"/> (rebuilt from the store's own pieces, so
    /// the delta's base is exactly what clients of that version hold) to the published tree, and moves it into
    /// <c>versions/&lt;v&gt;/deltas/&lt;from&gt;/</c>, the manifest last. Returns its size.
    /// </summary>
    private static long BuildDelta(PublishRequest request, CancellationToken ct)
    {
        var work = Path.Join(request.StoreDir, "." + StateTag() + ".publish");
        try
        {
            var baseDir = Path.Join(work, "base");
            Materialize(request.StoreDir, request.DeltaFrom!, baseDir, ct);
            var outDir = Path.Join(work, "delta");
            PatchBuilder.Build(new BuildRequest
            {
                FromDir = baseDir, ToDir = request.TreeDir, OutDir = outDir, Product = request.Product, Version = request.Version,
                FromVersion = request.DeltaFrom, PrivateKeyPem = request.PrivateKeyPem, Format = MessagePackManifest.Format,
                Level = request.Level, Time = request.Time,
            }, ct);
            var target = Path.Join(request.StoreDir, SourceNames.DeltaDir(request.Version, request.DeltaFrom!));
            Directory.CreateDirectory(target);
            long bytes = 0;
            foreach (var name in new[] { DeltaPayloadName, ManifestCodec.SignatureFileName, ManifestCodec.BinaryManifestFileName })
            {
                var file = Path.Join(outDir, name);
                if (!File.Exists(file)) continue;
                bytes += new FileInfo(file).Length;
                File.Move(file, Path.Join(target, name), overwrite: true);
            }

            return bytes;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The payload file of a format 2 patch.</summary>
    public const string DeltaPayloadName = "payload.bin";

    /// <summary>Rebuilds published <paramref name="version"/> into <paramref name="dir"/> from the store's pieces, each checked by SHA-256.</summary>
    private static void Materialize(string storeDir, string version, string dir, CancellationToken ct)
    {
        var manifestPath = Path.Join(storeDir, SourceNames.Manifest(version));
        var manifest = ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath), manifestPath);
        foreach (var d in manifest.Directories) Directory.CreateDirectory(PathRules.Join(dir, d));
        foreach (var file in manifest.Files)
        {
            ct.ThrowIfCancellationRequested();
            var path = PathRules.Join(dir, file.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            foreach (var part in file.Parts)
                output.Write(ReadPiece(storeDir, part.Sha256, part.Size).Span);
        }
    }

    /// <summary>A piece's raw bytes from the store: the zstd frame, or the raw piece of a store written before frames.</summary>
    private static ReadOnlyMemory<byte> ReadPiece(string storeDir, string sha256, long size)
    {
        var framePath = Path.Join(storeDir, SourceNames.Piece(sha256));
        var bytes = File.Exists(framePath)
            ? Deltas.ZstdPatch.Decompress(default, File.ReadAllBytes(framePath), checked((int)size), framePath)
            : File.ReadAllBytes(Path.Join(storeDir, SourceNames.Blob(sha256)));
        if (bytes.Length != size || Convert.ToHexStringLower(SHA256.HashData(bytes.Span)) != sha256)
            throw new PatcherException(PatchErrorCode.DownloadCorrupt, $"the store's piece {sha256} does not hash to its name", framePath);
        return bytes;
    }

    /// <summary>Writes a new pointer for the channel, one sequence above the current one; refuses to point it at an older version.</summary>
    private static void PointChannel(PublishRequest request, string manifestSha)
    {
        var path = Path.Join(request.StoreDir, SourceNames.Channel(request.Channel!));
        long sequence = 1;
        if (File.Exists(path))
        {
            var current = ChannelPointer.Parse(File.ReadAllBytes(path), path);
            if (current.Product != request.Product)
                throw new PatcherException(PatchErrorCode.WrongProduct, $"channel {request.Channel} is for product '{current.Product}'", path);
            if (PatchVersion.Parse(current.Version, "version") > PatchVersion.Parse(request.Version, "version"))
                throw new PatcherException(PatchErrorCode.ReleaseExists, $"channel {request.Channel} already points at the newer {current.Version}", path);
            sequence = current.Sequence + 1;
        }

        var now = request.Time.GetUtcNow();
        var pointer = new ChannelPointer
        {
            Product = request.Product, Channel = request.Channel!, Version = request.Version, ManifestSha256 = manifestSha,
            Sequence = sequence, Issued = now, Expires = now + request.ChannelLifetime,
        };
        var bytes = pointer.Serialize();
        var signature = SigningKeys.Sign(bytes, request.PrivateKeyPem);
        // The signature first: a reader that sees the new pointer must find its signature (the old one fails to verify, and the read is retried).
        WriteAtomically(Path.Join(request.StoreDir, SourceNames.ChannelSignature(request.Channel!)), ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
        WriteAtomically(path, bytes);
    }

    /// <summary>Stores the piece as a zstd frame unless the store has it. Returns the frame's length and whether it was written now.</summary>
    private static (long StoredSize, bool Written) WritePieceIfAbsent(string storeDir, string sha, ReadOnlySpan<byte> bytes, int level)
    {
        var path = Path.Join(storeDir, SourceNames.Piece(sha));
        if (File.Exists(path) && new FileInfo(path).Length > 0) return (new FileInfo(path).Length, false);
        var frame = Deltas.ZstdPatch.Compress(default, bytes, level);
        WriteAtomically(path, frame);
        return (frame.Length, true);
    }

    /// <summary>Writes to a temporary name and renames, so a server never serves half a file.</summary>
    private static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + StateTag() + ".tmp";
        using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            s.Write(bytes);
            s.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private static string StateTag() => State.StateLayout.RandomTag();
}
