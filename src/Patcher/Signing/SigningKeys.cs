using System.Security.Cryptography;
using NSec.Cryptography;
using Patching.Manifests;

namespace Patching.Signing;

/// <summary>The signature algorithms a key can be for. The key decides which one verifies; the envelope never says.</summary>
internal enum SigningAlgorithm
{
    /// <summary>Ed25519 (RFC 8032) through NSec/libsodium: deterministic 64-byte signatures. The default for new keys.</summary>
    Ed25519,

    /// <summary>ECDSA on NIST P-256 over SHA-256, signatures in IEEE P1363 form (r||s, 64 bytes), through the BCL.</summary>
    EcdsaP256,
}

/// <summary>
/// The signature scheme seam, signing side. Keys travel as PKCS#8 (private) and SubjectPublicKeyInfo (public) PEM,
/// whichever the algorithm; the algorithm is read from the key's own OID. The key id is the hex SHA-256 of the DER
/// SubjectPublicKeyInfo, so it is derived from the key (its algorithm included) and cannot be chosen by an attacker.
/// </summary>
internal static class SigningKeys
{
    public const string PrivateKeyFileName = "signing.key";
    public const string PublicKeyFileName = "signing.pub";

    /// <summary>Both algorithms sign with 64 bytes: Ed25519's R||S, and P-256's r||s.</summary>
    public const int SignatureLength = 64;

    public static (string PrivatePem, string PublicPem) Generate(SigningAlgorithm algorithm = SigningAlgorithm.Ed25519)
    {
        if (algorithm == SigningAlgorithm.EcdsaP256)
        {
            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            return (ecdsa.ExportPkcs8PrivateKeyPem() + "\n", ecdsa.ExportSubjectPublicKeyInfoPem() + "\n");
        }

        using var key = Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return (PemEncoding.WriteString("PRIVATE KEY", key.Export(KeyBlobFormat.PkixPrivateKey)) + "\n",
            PemEncoding.WriteString("PUBLIC KEY", key.PublicKey.Export(KeyBlobFormat.PkixPublicKey)) + "\n");
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

    public static string KeyId(ReadOnlySpan<byte> subjectPublicKeyInfo) => Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>Signs <paramref name="data"/> with a PKCS#8 PEM private key of either algorithm; returns the envelope entry.</summary>
    public static SignatureEntry Sign(ReadOnlySpan<byte> data, string privatePem, string? path = null)
    {
        var blocks = KeyText.PemBlocks(privatePem);
        if (blocks.Count != 1 || !KeyText.IsPrivateLabel(blocks[0].Label))
        {
            var found = blocks.Count == 0 ? "no PEM block" : string.Join(", ", blocks.Select(b => $"'{b.Label}'"));
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"not a private key in PKCS#8 PEM (found {found}); sign with {PrivateKeyFileName}", path);
        }

        var (label, der) = blocks[0];
        try
        {
            if (label == "PRIVATE KEY" && KeyText.PrivateKeyAlgorithm(der) == KeyText.Ed25519Oid)
            {
                using var key = Key.Import(SignatureAlgorithm.Ed25519, der, KeyBlobFormat.PkixPrivateKey);
                return Entry(key.PublicKey.Export(KeyBlobFormat.PkixPublicKey), SignatureAlgorithm.Ed25519.Sign(key, data));
            }

            using var ecdsa = ECDsa.Create();
            if (label == "EC PRIVATE KEY") ecdsa.ImportECPrivateKey(der, out _);
            else ecdsa.ImportPkcs8PrivateKey(der, out _);
            RequireP256(ecdsa, "signing key", path);
            return Entry(ecdsa.ExportSubjectPublicKeyInfo(), ecdsa.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or CryptographicException)
        {
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"not an Ed25519 or ECDSA P-256 private key in PKCS#8 PEM: {ex.Message}", path, ex);
        }
    }

    private static SignatureEntry Entry(byte[] spki, byte[] signature) =>
        new() { KeyId = KeyId(spki), Signature = Convert.ToBase64String(signature) };
}
