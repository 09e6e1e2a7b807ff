using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.State;

namespace Patching.Store;

/// <summary>
/// How the publisher writes the store's files: each under a temporary name and renamed, so a server never serves half a
/// file, and a signed file's signature before the file itself, so a reader that sees the new file finds its signature
/// (the old one fails to verify, and the read is retried).
/// </summary>
internal static class StoreFiles
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> and its signature by <paramref name="privateKeyPem"/> to <paramref name="signaturePath"/>, the signature first.</summary>
    public static void WriteSigned(string path, string signaturePath, byte[] bytes, string privateKeyPem)
    {
        var signature = SigningKeys.Sign(bytes, privateKeyPem);
        WriteAtomically(signaturePath, ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [signature] }));
        WriteAtomically(path, bytes);
    }

    /// <summary>
    /// Writes the version's signed index: its pieces' stored sizes and its deltas (those of an earlier index of this
    /// version kept, the one just built added).
    /// </summary>
    public static void WriteIndex(PublishRequest request, string manifestSha, IReadOnlyList<StoredPiece> pieces, long? deltaBytes)
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
        WriteSigned(path, Path.Join(request.StoreDir, SourceNames.IndexSignature(request.Version)), index.Serialize(), request.PrivateKeyPem);
    }

    /// <summary>Writes a new pointer for the channel, one sequence above the current one; refuses to point it at an older version.</summary>
    public static void PointChannel(PublishRequest request, string manifestSha)
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
        WriteSigned(path, Path.Join(request.StoreDir, SourceNames.ChannelSignature(request.Channel!)), pointer.Serialize(), request.PrivateKeyPem);
    }

    /// <summary>Writes to a temporary name, flushed to disk, and renames, so a server never serves half a file.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + TempTag() + ".tmp";
        using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            s.Write(bytes);
            s.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A random tag that keeps temporary names of concurrent writers apart.</summary>
    public static string TempTag() => StateLayout.RandomTag();
}
