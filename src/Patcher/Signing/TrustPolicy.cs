using Patching.Manifests;
namespace Patching.Signing;

/// <summary>
/// Decides whether manifest bytes are trusted: at least <c>threshold</c> distinct pinned keys must have
/// produced a valid signature over the exact bytes.
/// </summary>
internal sealed class TrustPolicy : IDisposable
{
    private readonly List<TrustedKey> _keys;

    public TrustPolicy(IEnumerable<TrustedKey> keys, int threshold)
    {
        _keys = keys.GroupBy(k => k.KeyId).Select(g => g.First()).ToList();
        if (threshold < 1) throw new ArgumentOutOfRangeException(nameof(threshold), "threshold must be at least 1");
        Threshold = threshold;
    }

    public int Threshold { get; }
    public int KeyCount => _keys.Count;

    public static TrustPolicy FromPems(IEnumerable<string> pems, int threshold)
    {
        // Checked before any key is created, so a bad option leaks nothing.
        if (threshold < 1)
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"SignatureThreshold must be at least 1 (was {threshold})");
        var keys = new List<TrustedKey>();
        try
        {
            foreach (var (pem, i) in pems.Select((p, i) => (p, i))) keys.Add(TrustedKey.FromPem(pem, $"trusted key #{i + 1}"));
            return new TrustPolicy(keys, threshold);
        }
        catch
        {
            foreach (var k in keys) k.Dispose();
            throw;
        }
    }

    /// <summary>Returns the key ids that verified. Throws when the threshold is not met.</summary>
    public IReadOnlyList<string> Verify(ReadOnlySpan<byte> manifestBytes, SignatureEnvelope? envelope, string? path)
    {
        if (envelope is null || envelope.Signatures.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "patch is not signed (no manifest.sig)", path);

        var verified = new List<string>();
        foreach (var sig in envelope.Signatures.Take(32))
        {
            var key = _keys.FirstOrDefault(k => string.Equals(k.KeyId, sig.KeyId, StringComparison.Ordinal));
            if (key is null || verified.Contains(key.KeyId)) continue;
            // A longer signature does not fit the buffer and fails to decode; a shorter one fails the length check.
            var raw = new byte[SigningKeys.SignatureLength];
            if (!Convert.TryFromBase64String(sig.Signature, raw, out var n) || n != SigningKeys.SignatureLength) continue;
            if (key.Verify(manifestBytes, raw)) verified.Add(key.KeyId);
        }

        if (verified.Count == 0)
        {
            var signedBy = string.Join(", ", envelope.Signatures.Select(s => Short(s.KeyId)));
            var trusted = string.Join(", ", _keys.Select(k => Short(k.KeyId)));
            throw new PatcherException(PatchErrorCode.SignatureInvalid,
                $"no valid signature from a trusted key (signed by {signedBy}; trusted: {trusted})", path);
        }

        if (verified.Count < Threshold)
        {
            throw new PatcherException(PatchErrorCode.SignatureThresholdNotMet,
                $"{verified.Count} trusted signature(s) verified, {Threshold} required", path);
        }

        return verified;
    }

    private static string Short(string keyId) => keyId.Length > 16 ? keyId[..16] : keyId;

    public void Dispose()
    {
        foreach (var k in _keys) k.Dispose();
    }
}
