namespace Patching.Manifests;

/// <summary>
/// Structural checks on a parsed manifest: safe paths, no collisions, consistent sizes and hashes, limits.
/// Runs before anything on disk is touched. The checks run in a fixed order (header, target tree, base, blobs, then
/// whether every part can be obtained), so a manifest with several faults is always refused for the same one.
/// </summary>
internal static class ManifestValidator
{
    public static void Validate(Manifest m, ManifestLimits limits)
    {
        CheckHeader(m, limits);
        var target = new TargetTree();
        foreach (var d in m.Directories) target.AddDirectory(d);
        CheckFiles(m, target, limits);
        foreach (var d in m.Directories)
        {
            if (!target.ParentListed(d))
                throw Malformed($"directory '{d}' is in '{PathRules.Parent(d)}', which the manifest does not list", d);
        }

        CheckBase(m, limits);
        var blobs = CheckBlobs(m, limits);
        CheckPartsObtainable(m, blobs, limits);
    }

    /// <summary>Product id, versions, and the number of entries of all four lists together.</summary>
    private static void CheckHeader(Manifest m, ManifestLimits limits)
    {
        if (string.IsNullOrWhiteSpace(m.Product) || m.Product.Length > 128 || m.Product.Any(char.IsControl))
            throw Malformed("product id is empty, too long or has control characters");
        _ = PatchVersion.Parse(m.Version, "version");
        if (m.FromVersion is not null) _ = PatchVersion.Parse(m.FromVersion, "fromVersion");

        if (m.Files.Count + m.Base.Count + m.Directories.Count + m.BaseDirectories.Count > limits.MaxFiles)
            throw new PatcherException(PatchErrorCode.LimitExceeded, $"manifest lists more than {limits.MaxFiles} entries");
    }

    /// <summary>
    /// The paths of the target tree. Directories and files share one namespace, compared case- and
    /// normalisation-insensitively because the install may live on NTFS or APFS.
    /// </summary>
    private sealed class TargetTree
    {
        private readonly Dictionary<string, string> _keys = new(PathRules.CollisionComparer);
        private readonly HashSet<string> _dirs = new(StringComparer.Ordinal);
        private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _dirsBySpan;

        // Parents are looked up as spans of the child's path: no substring per file.
        public TargetTree() => _dirsBySpan = _dirs.GetAlternateLookup<ReadOnlySpan<char>>();

        public void AddDirectory(string path)
        {
            CheckPath(path);
            AddUnique(_keys, path);
            _dirs.Add(path);
        }

        public void AddFile(string path)
        {
            CheckPath(path);
            AddUnique(_keys, path);
        }

        /// <summary>True when <paramref name="path"/> is at the root or its parent directory is listed.</summary>
        public bool ParentListed(string path)
        {
            var parent = PathRules.ParentLength(path);
            return parent <= 0 || _dirsBySpan.Contains(path.AsSpan(0, parent));
        }
    }

    /// <summary>Each target file: its path, its directory, its size and hash, the total size, and its parts.</summary>
    private static void CheckFiles(Manifest m, TargetTree target, ManifestLimits limits)
    {
        long total = 0;
        foreach (var f in m.Files)
        {
            target.AddFile(f.Path);
            if (!target.ParentListed(f.Path))
                throw Malformed($"file '{f.Path}' is in directory '{PathRules.Parent(f.Path)}', which the manifest does not list", f.Path);
            CheckSizeAndHash(f.Size, f.Sha256, f.Path, limits);
            total += f.Size;
            if (total > limits.MaxTotalBytes)
                throw new PatcherException(PatchErrorCode.LimitExceeded, $"target is larger than {limits.MaxTotalBytes} bytes in total");
            CheckParts(f, limits);
        }
    }

    /// <summary>The parts of one file add up to it: sizes sum to its size, a single part has its hash.</summary>
    private static void CheckParts(TargetFile f, ManifestLimits limits)
    {
        if (f.Parts.Count == 0 && f.Size != 0)
            throw Malformed($"file '{f.Path}' has content but no parts", f.Path);
        if (f.Size == 0 && f.Sha256 != EmptySha256)
            throw Malformed($"empty file '{f.Path}' declares a SHA-256 other than that of no bytes", f.Path);
        long partsTotal = 0;
        foreach (var p in f.Parts)
        {
            CheckSizeAndHash(p.Size, p.Sha256, f.Path, limits);
            partsTotal += p.Size;
        }

        if (partsTotal != f.Size)
            throw Malformed($"file '{f.Path}' declares {f.Size} bytes but its parts add up to {partsTotal}", f.Path);
        if (f.Parts.Count == 1 && f.Parts[0].Sha256 != f.Sha256)
            throw Malformed($"file '{f.Path}' has a single part whose hash differs from the file's hash", f.Path);
    }

    /// <summary>
    /// The base tree (what a patch expects to find installed): safe, non-colliding paths in a namespace of its own,
    /// sizes and hashes in bounds; a full package has none.
    /// </summary>
    private static void CheckBase(Manifest m, ManifestLimits limits)
    {
        var baseKeys = new Dictionary<string, string>(PathRules.CollisionComparer);
        foreach (var d in m.BaseDirectories)
        {
            CheckPath(d);
            AddUnique(baseKeys, d);
        }

        foreach (var b in m.Base)
        {
            CheckPath(b.Path);
            AddUnique(baseKeys, b.Path);
            CheckSizeAndHash(b.Size, b.Sha256, b.Path, limits);
        }

        if (m.IsFullPackage && m.Base.Count != 0)
            throw Malformed("a full package (no fromVersion) must not list base files");
    }

    /// <summary>The shipped blobs, by SHA-256: sizes in bounds, a known compression, each listed once.</summary>
    private static Dictionary<string, BlobEntry> CheckBlobs(Manifest m, ManifestLimits limits)
    {
        var blobs = new Dictionary<string, BlobEntry>(StringComparer.Ordinal);
        foreach (var blob in m.Blobs)
        {
            CheckSizeAndHash(blob.Size, blob.Sha256, blob.Sha256, limits);
            if (blob.Compression is not (BlobCompression.None or BlobCompression.Brotli))
                throw Malformed($"blob {blob.Sha256} has unknown compression '{blob.Compression}'");
            if (blob.StoredSize < 0 || blob.StoredSize > limits.MaxFileBytes)
                throw new PatcherException(PatchErrorCode.LimitExceeded, $"blob {blob.Sha256} declares a stored size out of bounds");
            if (blob.Compression == BlobCompression.None && blob.StoredSize != blob.Size)
                throw Malformed($"uncompressed blob {blob.Sha256} declares a stored size different from its size");
            if (!blobs.TryAdd(blob.Sha256, blob))
                throw Malformed($"blob {blob.Sha256} is listed twice");
        }

        return blobs;
    }

    /// <summary>
    /// Every part must be obtainable: shipped as a blob of the same size, or already present in the base. Format 2
    /// recipes are checked here too, since the contents they rebuild count as present.
    /// </summary>
    private static void CheckPartsObtainable(Manifest m, Dictionary<string, BlobEntry> blobs, ManifestLimits limits)
    {
        var baseContent = new HashSet<(string, long)>(m.Base.Select(b => (b.Sha256, b.Size)));
        if (m.Format == MessagePackManifest.Format) DeltaValidator.Validate(m, limits);
        // Format 2 rebuilds these from the base and its payload (recipes were checked just above).
        foreach (var r in m.Recipes) baseContent.Add((r.Sha256, r.Size));
        foreach (var f in m.Files)
        {
            foreach (var p in f.Parts)
            {
                if (blobs.TryGetValue(p.Sha256, out var blob))
                {
                    if (blob.Size != p.Size)
                        throw Malformed($"file '{f.Path}' needs {p.Size} bytes of {p.Sha256} but the blob declares {blob.Size}", f.Path);
                }
                else if (!baseContent.Contains((p.Sha256, p.Size)))
                {
                    throw Malformed($"content {p.Sha256} of '{f.Path}' is neither a blob nor in the base", f.Path);
                }
            }
        }
    }

    internal static void CheckPath(string path)
    {
        var reason = PathRules.Check(path);
        if (reason is not null)
            throw new PatcherException(PatchErrorCode.UnsafePath, $"unsafe path '{Printable(path)}': {reason}", Printable(path));
    }

    private static void AddUnique(Dictionary<string, string> keys, string path)
    {
        var key = PathRules.CollisionForm(path);
        if (!keys.TryAdd(key, path))
        {
            throw new PatcherException(PatchErrorCode.UnsafePath,
                $"path '{path}' collides with '{keys[key]}' (same name ignoring case or Unicode normalisation)", path);
        }
    }

    private static void CheckSizeAndHash(long size, string sha256, string what, ManifestLimits limits)
    {
        if (size < 0) throw Malformed($"'{what}' has a negative size", what);
        if (size > limits.MaxFileBytes)
            throw new PatcherException(PatchErrorCode.LimitExceeded, $"'{what}' declares {size} bytes, over the limit of {limits.MaxFileBytes}", what);
        if (!IsSha256Hex(sha256)) throw Malformed($"'{what}' has a malformed sha256 (64 lowercase hex digits expected)", what);
    }

    /// <summary>SHA-256 of zero bytes: the only hash an empty file can have.</summary>
    public const string EmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    public static bool IsSha256Hex(string s) =>
        s is { Length: 64 } && !s.AsSpan().ContainsAnyExcept(LowerHexDigits);

    private static readonly System.Buffers.SearchValues<char> LowerHexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    private static PatcherException Malformed(string message, string? path = null) =>
        new(PatchErrorCode.ManifestMalformed, message, path);

    /// <summary>Escapes control characters so an error message cannot smuggle terminal escapes.</summary>
    private static string Printable(string s) =>
        string.Concat(s.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
