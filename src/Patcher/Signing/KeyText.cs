using System.Formats.Asn1;
using System.Security.Cryptography;

namespace Patching.Signing;

/// <summary>
/// Reads the text a caller hands over as a key: PEM blocks, and the bare forms a private key also comes in (DER
/// PKCS#8 as base64 or hex, raw seeds). It only classifies and decodes; <see cref="TrustedKey"/> and
/// <see cref="SigningKeys"/> decide what each use accepts.
/// </summary>
internal static class KeyText
{
    /// <summary>The hint every refusal of a private key as a trust anchor ends with.</summary>
    public const string PinPublicKeyHint =
        "a trusted key must be the public key: pin " + SigningKeys.PublicKeyFileName + ", never " + SigningKeys.PrivateKeyFileName +
        " (a launcher that ships the private key lets anyone sign patches)";

    public const string Ed25519Oid = "1.3.101.112";
    public const string EcPublicKeyOid = "1.2.840.10045.2.1";

    /// <summary>Every PEM block in <paramref name="text"/>, in order: its label and its decoded DER.</summary>
    public static List<(string Label, byte[] Der)> PemBlocks(string text)
    {
        var blocks = new List<(string, byte[])>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            var der = new byte[fields.DecodedDataLength];
            if (!Convert.TryFromBase64Chars(rest[fields.Base64Data], der, out var n)) der = [];
            blocks.Add((label, der[..n]));
            rest = rest[fields.Location.End..];
        }

        return blocks;
    }

    /// <summary>True for every PEM label a private key is stored under (PKCS#8, encrypted PKCS#8, SEC1, PKCS#1, OpenSSH).</summary>
    public static bool IsPrivateLabel(string label) => label.Contains("PRIVATE KEY", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Text that is not PEM but decodes (hex, then base64) to bytes: a DER blob or raw key material pasted as text.
    /// Null when it is neither.
    /// </summary>
    public static byte[]? BareBytes(string text)
    {
        var compact = string.Concat(text.Where(c => !char.IsWhiteSpace(c)));
        if (compact.Length == 0) return null;
        if (compact.Length % 2 == 0 && compact.All(char.IsAsciiHexDigit)) return Convert.FromHexString(compact);
        var buffer = new byte[compact.Length];
        return Convert.TryFromBase64String(compact, buffer, out var n) ? buffer[..n] : null;
    }

    /// <summary>True when <paramref name="der"/> is a PKCS#8 PrivateKeyInfo or EncryptedPrivateKeyInfo (or SEC1 ECPrivateKey).</summary>
    public static bool LooksLikePrivateKeyDer(byte[] der)
    {
        try
        {
            var seq = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            if (seq.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                // PrivateKeyInfo: version, AlgorithmIdentifier, OCTET STRING; ECPrivateKey: version 1, OCTET STRING.
                seq.ReadInteger();
                return seq.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence) || seq.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString);
            }

            // EncryptedPrivateKeyInfo: AlgorithmIdentifier, OCTET STRING (SubjectPublicKeyInfo has a BIT STRING there).
            seq.ReadSequence();
            return seq.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString);
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    /// <summary>The algorithm OID of a SubjectPublicKeyInfo (<c>SEQUENCE { SEQUENCE { OID, ... }, BIT STRING }</c>).</summary>
    public static string? PublicKeyAlgorithm(byte[] spki)
    {
        try
        {
            var seq = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
            return seq.ReadSequence().ReadObjectIdentifier();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>The algorithm OID of a PKCS#8 PrivateKeyInfo (<c>SEQUENCE { INTEGER, SEQUENCE { OID, ... }, OCTET STRING }</c>).</summary>
    public static string? PrivateKeyAlgorithm(byte[] pkcs8)
    {
        try
        {
            var seq = new AsnReader(pkcs8, AsnEncodingRules.DER).ReadSequence();
            seq.ReadInteger();
            return seq.ReadSequence().ReadObjectIdentifier();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }
}
