using System.Security.Cryptography;
using Patching.Manifests;

namespace Patching.Signing;

/// <summary>
/// The signature scheme seam: ECDSA P-256 over SHA-256, signatures in IEEE P1363 form (r||s, 64 bytes).
/// Keys travel as PKCS#8 (private) and SubjectPublicKeyInfo (public) PEM. The key id is the hex SHA-256
/// of the DER SubjectPublicKeyInfo, so it is derived from the key and cannot be chosen by an attacker.
/// Another algorithm (Ed25519, RSA-PSS) would be a new <see cref="TrustedKey"/> kind recognised from the
/// key's own OID: the envelope never names the algorithm.
/// </summary>
internal static class SigningKeys
{
    public const string PrivateKeyFileName = "signing.key";
    public const string PublicKeyFileName = "signing.pub";

    public static (string PrivatePem, string PublicPem) Generate()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (ecdsa.ExportPkcs8PrivateKeyPem(), ecdsa.ExportSubjectPublicKeyInfoPem());
    }

    /// <summary>
    /// The curve must be NIST P-256 itself, not merely 256 bits long (brainpoolP256r1 and secp256k1 are too): the
    /// scheme is "ECDSA P-256 / SHA-256" and nothing else is accepted.
    /// </summary>
    public static void RequireP256(ECDsa key, string what, string? path)
    {
        var curve = key.ExportParameters(includePrivateParameters: false).Curve;
        var oid = curve.IsNamed ? curve.Oid : null;
        if (key.KeySize != 256 || oid is null || (oid.Value != NistP256Oid && oid.FriendlyName is not ("nistP256" or "ECDSA_P256" or "prime256v1")))
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"{what} must be ECDSA on the named NIST P-256 curve, found {oid?.FriendlyName ?? oid?.Value ?? "explicit curve parameters"}", path);
    }

    private const string NistP256Oid = "1.2.840.10045.3.1.7";

    public static string KeyId(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    /// <summary>Signs <paramref name="data"/> with a PKCS#8 PEM private key; returns the envelope entry.</summary>
    public static SignatureEntry Sign(ReadOnlySpan<byte> data, string privatePem, string? path = null)
    {
        using var ecdsa = LoadPrivate(privatePem, path);
        var sig = ecdsa.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return new SignatureEntry { KeyId = KeyId(ecdsa), Signature = Convert.ToBase64String(sig) };
    }

    private static ECDsa LoadPrivate(string pem, string? path)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
            RequireP256(ecdsa, "signing key", path);
            // Exporting parameters with the private part fails for a public-only key.
            _ = ecdsa.ExportParameters(includePrivateParameters: true);
            return ecdsa;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or PatcherException)
        {
            ecdsa.Dispose();
            if (ex is PatcherException) throw;
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"not an ECDSA P-256 private key in PKCS#8 PEM: {ex.Message}", path, ex);
        }
    }
}

/// <summary>A pinned public key a launcher trusts.</summary>
internal sealed class TrustedKey : IDisposable
{
    private readonly ECDsa _key;

    private TrustedKey(ECDsa key, string source)
    {
        _key = key;
        Source = source;
        KeyId = SigningKeys.KeyId(key);
    }

    public string KeyId { get; }
    public string Source { get; }

    /// <summary>
    /// Reads one pinned public key: a single SubjectPublicKeyInfo PEM block. A private key in any form (a PEM block
    /// labelled as one, DER PKCS#8 as base64 or hex, raw key bytes) is refused: pinning it would ship the signing key
    /// to every player.
    /// </summary>
    public static TrustedKey FromPem(string pem, string source)
    {
        var der = PublicKeyDer(pem, source);
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportSubjectPublicKeyInfo(der, out _);
            SigningKeys.RequireP256(ecdsa, "trusted key", source);
            return new TrustedKey(ecdsa, source);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or PatcherException)
        {
            ecdsa.Dispose();
            if (ex is PatcherException) throw;
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"not an ECDSA P-256 public key in PEM: {ex.Message}", source, ex);
        }
    }

    /// <summary>The DER SubjectPublicKeyInfo of the one PUBLIC KEY block in <paramref name="text"/>; refuses anything else.</summary>
    private static byte[] PublicKeyDer(string text, string source)
    {
        var blocks = KeyText.PemBlocks(text);
        if (blocks.FirstOrDefault(b => KeyText.IsPrivateLabel(b.Label)) is { Label: { } privateLabel })
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is a private key (PEM '{privateLabel}'); {KeyText.PinPublicKeyHint}", source);
        if (blocks.Count == 0)
        {
            var bare = KeyText.BareBytes(text);
            if (bare is not null && KeyText.LooksLikePrivateKeyDer(bare))
                throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is a private key (DER PKCS#8 without PEM armour); {KeyText.PinPublicKeyHint}", source);
            if (bare is { Length: 32 or 64 })
                throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is {bare.Length} bytes of raw key material, which may be a private key; {KeyText.PinPublicKeyHint} (SubjectPublicKeyInfo PEM)", source);
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is not a PEM public key (no '-----BEGIN PUBLIC KEY-----' block); pin {SigningKeys.PublicKeyFileName}", source);
        }

        if (blocks.Count > 1)
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} holds {blocks.Count} PEM blocks; a trusted key is exactly one public key ({SigningKeys.PublicKeyFileName})", source);
        if (blocks[0].Label != "PUBLIC KEY")
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is a PEM '{blocks[0].Label}', not a 'PUBLIC KEY'; pin {SigningKeys.PublicKeyFileName}", source);
        return blocks[0].Der;
    }

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        signature.Length == 64 &&
        _key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose() => _key.Dispose();
}
