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

    public static TrustedKey FromPem(string pem, string source)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
            SigningKeys.RequireP256(ecdsa, "trusted key", source);
            return new TrustedKey(ecdsa, source);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException or PatcherException)
        {
            ecdsa.Dispose();
            if (ex is PatcherException) throw;
            // .NET's ArgumentException text ("... (Parameter 'input')") speaks to a programmer, not to whoever chose the file.
            var why = ex is ArgumentException ? "no PEM public key block ('-----BEGIN PUBLIC KEY-----') found" : ex.Message;
            throw new PatcherException(PatchErrorCode.KeyInvalid, $"not an ECDSA P-256 public key in PEM: {why}", source, ex);
        }
    }

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        signature.Length == 64 &&
        _key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose() => _key.Dispose();
}
