using System.Security.Cryptography;
using NSec.Cryptography;

namespace Patching.Signing;

/// <summary>
/// A pinned public key a launcher trusts, Ed25519 or ECDSA P-256 as its SubjectPublicKeyInfo says. Verification uses
/// the key's own algorithm, whatever a signature claims, so a signature made with another algorithm under this key's
/// id simply fails.
/// </summary>
internal sealed class TrustedKey : IDisposable
{
    private readonly ECDsa? _ecdsa;
    private readonly PublicKey? _ed25519;

    private TrustedKey(ECDsa? ecdsa, PublicKey? ed25519, byte[] spki, string source)
    {
        _ecdsa = ecdsa;
        _ed25519 = ed25519;
        Algorithm = ed25519 is not null ? SigningAlgorithm.Ed25519 : SigningAlgorithm.EcdsaP256;
        Source = source;
        KeyId = SigningKeys.KeyId(spki);
    }

    public string KeyId { get; }
    public string Source { get; }
    public SigningAlgorithm Algorithm { get; }

    /// <summary>
    /// Reads one pinned public key: a single SubjectPublicKeyInfo PEM block. A private key in any form (a PEM block
    /// labelled as one, DER PKCS#8 as base64 or hex, raw key bytes) is refused: pinning it would ship the signing key
    /// to every player.
    /// </summary>
    public static TrustedKey FromPem(string pem, string source)
    {
        var der = PublicKeyDer(pem, source);
        switch (KeyText.PublicKeyAlgorithm(der))
        {
            case KeyText.Ed25519Oid:
                if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, der, KeyBlobFormat.PkixPublicKey, out var ed25519) || ed25519 is null)
                    throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is not a valid Ed25519 public key", source);
                return new TrustedKey(null, ed25519, ed25519.Export(KeyBlobFormat.PkixPublicKey), source);
            case KeyText.EcPublicKeyOid:
                var ecdsa = ECDsa.Create();
                try
                {
                    ecdsa.ImportSubjectPublicKeyInfo(der, out _);
                    SigningKeys.RequireP256(ecdsa, "trusted key", source);
                    return new TrustedKey(ecdsa, null, ecdsa.ExportSubjectPublicKeyInfo(), source);
                }
                catch (Exception ex) when (ex is ArgumentException or CryptographicException or PatcherException)
                {
                    ecdsa.Dispose();
                    if (ex is PatcherException) throw;
                    throw new PatcherException(PatchErrorCode.KeyInvalid, $"{source} is not an ECDSA P-256 public key: {ex.Message}", source, ex);
                }

            case var other:
                throw new PatcherException(PatchErrorCode.KeyInvalid,
                    $"{source} is a public key of an unsupported algorithm ({other ?? "unreadable SubjectPublicKeyInfo"}); trusted keys are Ed25519 or ECDSA P-256", source);
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

    /// <summary>
    /// True when <paramref name="signature"/> is this key's valid signature over <paramref name="data"/>. libsodium's
    /// Ed25519 verification refuses a non-canonical S (S ≥ L), a small-order or non-canonical public key or R, and any
    /// length but 64.
    /// </summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        signature.Length == SigningKeys.SignatureLength && (_ed25519 is not null
            ? SignatureAlgorithm.Ed25519.Verify(_ed25519, data, signature)
            : _ecdsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));

    public void Dispose() => _ecdsa?.Dispose();
}
