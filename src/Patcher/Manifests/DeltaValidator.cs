namespace Patching.Manifests;

/// <summary>
/// Structural checks on format 2's recipes, before anything is read: lengths add up, every range lies inside the
/// base file, earlier content or payload it names, and nothing exceeds the bounds the applier holds in memory.
/// </summary>
internal static class DeltaValidator
{
    public static void Validate(Manifest m, ManifestLimits limits)
    {
        if (m.Blobs.Count != 0) throw Malformed("a format 2 manifest ships no blobs");
        if (m.PayloadSize < 0 || m.PayloadSize > limits.MaxTotalBytes)
            throw new PatcherException(PatchErrorCode.LimitExceeded, $"the payload declares {m.PayloadSize} bytes, out of bounds");
        var baseSizes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var b in m.Base) baseSizes[b.Path] = b.Size;
        // Contents by SHA-256 with their size, each added once its recipe is checked: a content window may only name
        // one already here, an earlier recipe. That makes the graph of references acyclic, so rebuilding a content
        // never waits on itself, directly or through others.
        var earlier = new Dictionary<string, long>(StringComparer.Ordinal);
        var all = new HashSet<string>(StringComparer.Ordinal);
        long ops = 0;
        foreach (var r in m.Recipes)
        {
            if (!all.Add(r.Sha256)) throw Malformed($"content {r.Sha256} has two recipes");
            if (r.Size == 0) throw Malformed($"content {r.Sha256} is empty and needs no recipe");
            ops += r.Ops.Count;
            if (ops > limits.MaxFiles) throw new PatcherException(PatchErrorCode.LimitExceeded, $"the recipes hold more than {limits.MaxFiles} operations");
            long total = 0;
            foreach (var op in r.Ops)
            {
                if (op.Length <= 0) throw Malformed($"an operation of content {r.Sha256} outputs no bytes");
                if (op.Length > DeltaLimits.MaxDataLength)
                    throw new PatcherException(PatchErrorCode.LimitExceeded, $"an operation of content {r.Sha256} declares {op.Length} bytes, over {DeltaLimits.MaxDataLength}");
                if (!ManifestValidator.IsSha256Hex(op.Sha256)) throw Malformed($"an operation of content {r.Sha256} has a malformed sha256");
                total += op.Length;
                if (op.Kind == DeltaOpKind.Copy)
                {
                    InsideBase(op.BasePath, op.BaseOffset, op.Length, baseSizes, r.Sha256);
                }
                else
                {
                    if (op.StoredLength <= 0 || op.StoredLength > DeltaLimits.MaxStoredLength)
                        throw new PatcherException(PatchErrorCode.LimitExceeded, $"a delta of content {r.Sha256} declares a stored length out of bounds");
                    if (op.PayloadOffset < 0 || op.PayloadOffset > m.PayloadSize - op.StoredLength)
                        throw new PatcherException(PatchErrorCode.DeltaReferenceOutsideBase, $"a delta of content {r.Sha256} lies outside the payload", r.Sha256);
                    if (op.Refs.Count > DeltaLimits.MaxRefs)
                        throw new PatcherException(PatchErrorCode.LimitExceeded, $"a delta of content {r.Sha256} has {op.Refs.Count} reference windows, over {DeltaLimits.MaxRefs}");
                    long refTotal = 0;
                    foreach (var window in op.Refs)
                    {
                        if (window.Length <= 0) throw Malformed($"a reference window of content {r.Sha256} is empty");
                        refTotal += window.Length;
                        if (refTotal > DeltaLimits.MaxRefLength)
                            throw new PatcherException(PatchErrorCode.LimitExceeded, $"the reference of a delta of content {r.Sha256} is over {DeltaLimits.MaxRefLength} bytes");
                        if (!ManifestValidator.IsSha256Hex(window.Sha256)) throw Malformed($"a reference window of content {r.Sha256} has a malformed sha256");
                        if (window.Content is null) InsideBase(window.Path, window.Offset, window.Length, baseSizes, r.Sha256);
                        else InsideContent(window, earlier, r.Sha256);
                    }
                }
            }

            if (total != r.Size) throw Malformed($"the operations of content {r.Sha256} add up to {total} bytes, declared {r.Size}");
            earlier.Add(r.Sha256, r.Size);
        }
    }

    private static void InsideContent(RefWindow window, Dictionary<string, long> earlier, string content)
    {
        if (window.Path.Length != 0) throw Malformed($"a reference window of content {content} names both a content and base file '{window.Path}'");
        if (!earlier.TryGetValue(window.Content!, out var size))
            throw new PatcherException(PatchErrorCode.DeltaReferenceNotEarlier,
                $"a delta of content {content} reads content {window.Content}, which no earlier recipe rebuilds (itself, a later one, or none)", window.Content);
        if (window.Offset < 0 || window.Offset > size - window.Length)
            throw new PatcherException(PatchErrorCode.DeltaReferenceOutsideBase,
                $"content {content} reads {window.Length} bytes at {window.Offset} of content {window.Content}, outside it", window.Content);
    }

    private static void InsideBase(string? path, long offset, long length, Dictionary<string, long> baseSizes, string content)
    {
        if (path is null || !baseSizes.TryGetValue(path, out var size) || offset < 0 || offset > size - length)
            throw new PatcherException(PatchErrorCode.DeltaReferenceOutsideBase,
                $"content {content} reads {length} bytes at {offset} of base file '{path}', outside it", path);
    }

    private static PatcherException Malformed(string message) => new(PatchErrorCode.ManifestMalformed, message);
}
