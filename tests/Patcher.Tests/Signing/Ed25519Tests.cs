using System.Numerics;
using System.Security.Cryptography;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Signing;

/// <summary>
/// Ed25519 beside ECDSA P-256: the golden Ed25519 signature pinned byte for byte, threshold signing with both kinds of
/// key, and the hostile inputs an Ed25519 verifier must refuse (wrong length, non-canonical S, small-order key, a
/// signature of another algorithm under the key's id).
/// </summary>
public sealed class Ed25519Tests
{
    private const string GoldenName = "sample-1.0.0-to-1.1.0-ed25519";

    /// <summary>The group order L of Ed25519: a valid S is below it.</summary>
    private static readonly BigInteger L = BigInteger.Pow(2, 252) + BigInteger.Parse("27742317777372353535851937790883648493", System.Globalization.CultureInfo.InvariantCulture);

    private static string GoldenPath(string file) => Path.Join(RepoPaths.Golden, GoldenName, file);

    private static byte[] GoldenManifest => File.ReadAllBytes(GoldenPath(ManifestCodec.ManifestFileName));

    private static SignatureEnvelope GoldenEnvelope => ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(GoldenPath(ManifestCodec.SignatureFileName)));

    private static IReadOnlyList<string> VerifyWith(byte[] manifest, SignatureEnvelope envelope, int threshold, params string[] pubFiles)
    {
        using var policy = TrustPolicy.FromPems(pubFiles.Select(File.ReadAllText), threshold);
        return policy.Verify(manifest, envelope, null);
    }

    private static PatchErrorCode RefusalOf(byte[] manifest, SignatureEnvelope envelope, params string[] pubFiles) =>
        Assert.Throws<PatcherException>(() => VerifyWith(manifest, envelope, 1, pubFiles))!.Code;

    private static SignatureEnvelope Envelope(params SignatureEntry[] entries) => new() { Signatures = entries };

    [Test]
    public void GoldenEd25519_Signature_IsTheDeterministicSignatureByteForByte()
    {
        var signed = ManifestCodec.SerializeEnvelope(Envelope(SigningKeys.Sign(GoldenManifest, File.ReadAllText(RepoPaths.TestEd25519Key))));
        if (Environment.GetEnvironmentVariable("PATCHER_UPDATE_GOLDEN") == "1") File.WriteAllBytes(GoldenPath(ManifestCodec.SignatureFileName), signed);

        Assert.That(signed, Is.EqualTo(File.ReadAllBytes(GoldenPath(ManifestCodec.SignatureFileName))));
    }

    [Test]
    public void GoldenEd25519_WithItsPinnedPublicKey_Verifies()
    {
        var keys = VerifyWith(GoldenManifest, GoldenEnvelope, 1, GoldenPath(SigningKeys.PublicKeyFileName));

        Assert.That(keys, Is.EqualTo(new[] { PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(RepoPaths.TestEd25519Pub)) }));
        Assert.That(File.ReadAllBytes(GoldenPath(SigningKeys.PublicKeyFileName)), Is.EqualTo(File.ReadAllBytes(RepoPaths.TestEd25519Pub)));
    }

    [Test]
    public void GoldenEd25519_Manifest_IsTheP256GoldenManifestByteForByte()
    {
        Assert.That(GoldenManifest, Is.EqualTo(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "sample-1.0.0-to-1.1.0", ManifestCodec.ManifestFileName))));
    }

    [Test]
    public void GoldenEd25519_WithOtherKeys_FailsSignatureInvalid()
    {
        Assert.That(RefusalOf(GoldenManifest, GoldenEnvelope, RepoPaths.TestEd25519Pub2), Is.EqualTo(PatchErrorCode.SignatureInvalid));
        Assert.That(RefusalOf(GoldenManifest, GoldenEnvelope, RepoPaths.TestPub), Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void Verify_MixedP256AndEd25519Signatures_MeetThresholdTwo()
    {
        var both = Envelope(
            SigningKeys.Sign(GoldenManifest, File.ReadAllText(RepoPaths.TestKey)),
            SigningKeys.Sign(GoldenManifest, File.ReadAllText(RepoPaths.TestEd25519Key)));

        var keys = VerifyWith(GoldenManifest, both, 2, RepoPaths.TestPub, RepoPaths.TestEd25519Pub);

        Assert.That(keys, Has.Count.EqualTo(2));
        var onlyEd = Envelope(both.Signatures[1]);
        Assert.That(Assert.Throws<PatcherException>(() => VerifyWith(GoldenManifest, onlyEd, 2, RepoPaths.TestPub, RepoPaths.TestEd25519Pub))!.Code,
            Is.EqualTo(PatchErrorCode.SignatureThresholdNotMet));
    }

    [Test]
    public void Cli_Ed25519BuildThenP256Sign_VerifiesWithThresholdTwoAndApplies()
    {
        using var s = new PatchScenario().WithSmallGame();
        var edKey = Path.Join(s.Dir("keys"), "ed.key");
        File.Copy(RepoPaths.TestEd25519Key, edKey);
        CliRunner.Expect(0, "build", "--from", s.OldTree, "--to", s.NewTree, "--out", s.PatchDir, "--key", edKey,
            "--product", "demo-game", "--version", "2.0.0", "--from-version", "1.0.0");
        CliRunner.Expect(0, "sign", "--patch", s.PatchDir, "--key", RepoPaths.TestKey);
        s.Install();

        var verify = CliRunner.Expect(0, "verify", "--patch", s.PatchDir, "--trust", RepoPaths.TestPub, "--trust", RepoPaths.TestEd25519Pub, "--threshold", "2", "--json");
        CliRunner.Expect(0, "apply", "--patch", s.PatchDir, "--target", s.InstallDir, "--trust", RepoPaths.TestPub, "--trust", RepoPaths.TestEd25519Pub, "--threshold", "2");

        Assert.That(verify.Json().GetProperty("verifiedKeyIds").GetArrayLength(), Is.EqualTo(2));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_P256KeyAndPatch_StillWork()
    {
        using var s = new PatchScenario().WithSmallGame();
        var (priv, pub) = SigningKeys.Generate(SigningAlgorithm.EcdsaP256);
        Patching.Building.PatchBuilder.Build(new Patching.Building.BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.PatchDir, Product = "demo-game", Version = "2.0.0", FromVersion = "1.0.0", PrivateKeyPem = priv,
        });
        s.Install();

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { TrustedKeys = [pub] });

        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        using var key = TrustedKey.FromPem(pub, "p256");
        Assert.That(key.Algorithm, Is.EqualTo(SigningAlgorithm.EcdsaP256));
    }

    [TestCase(63)]
    [TestCase(65)]
    [TestCase(0)]
    public void Verify_Ed25519SignatureOfWrongLength_FailsSignatureInvalid(int length)
    {
        var good = Convert.FromBase64String(GoldenEnvelope.Signatures[0].Signature);
        var bad = new byte[length];
        good.AsSpan(0, Math.Min(length, good.Length)).CopyTo(bad);

        var envelope = Envelope(GoldenEnvelope.Signatures[0] with { Signature = Convert.ToBase64String(bad) });

        Assert.That(RefusalOf(GoldenManifest, envelope, RepoPaths.TestEd25519Pub), Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void Verify_Ed25519SignatureWithNonCanonicalS_FailsSignatureInvalid()
    {
        // S + L is the same scalar modulo L: a verifier that reduces S instead of refusing S >= L would accept it.
        var good = Convert.FromBase64String(GoldenEnvelope.Signatures[0].Signature);
        var s = new BigInteger(good.AsSpan(32), isUnsigned: true);
        Assert.That(s, Is.LessThan(L));
        var malleated = (byte[])good.Clone();
        (s + L).TryWriteBytes(malleated.AsSpan(32), out var written, isUnsigned: true);
        Assert.That(written, Is.LessThanOrEqualTo(32));
        Assert.That(malleated, Is.Not.EqualTo(good));

        var envelope = Envelope(GoldenEnvelope.Signatures[0] with { Signature = Convert.ToBase64String(malleated) });

        Assert.That(RefusalOf(GoldenManifest, envelope, RepoPaths.TestEd25519Pub), Is.EqualTo(PatchErrorCode.SignatureInvalid));
        Assert.That(VerifyWith(GoldenManifest, GoldenEnvelope, 1, RepoPaths.TestEd25519Pub), Has.Count.EqualTo(1), "the unmodified signature verifies");
    }

    [Test]
    public void Verify_SmallOrderEd25519PublicKeyWithIdentitySignature_IsRefused()
    {
        // The neutral element as public key A, R = neutral, S = 0: [S]B = R + [k]A holds for every message, so a
        // verifier that does not refuse small-order keys accepts anything "signed" by this key.
        var identity = new byte[32];
        identity[0] = 1;
        using var temp = TempDir.ForCurrentTest();
        var pub = temp["small-order.pub"];
        File.WriteAllText(pub, PemEncoding.WriteString("PUBLIC KEY", [.. Convert.FromHexString("302a300506032b6570032100"), .. identity]));
        var signature = new byte[64];
        signature[0] = 1;
        var keyId = SigningKeys.KeyId(PemEncoding.TryFind(File.ReadAllText(pub), out var f) ? Convert.FromBase64String(File.ReadAllText(pub)[f.Base64Data]) : []);
        var envelope = Envelope(new SignatureEntry { KeyId = keyId, Signature = Convert.ToBase64String(signature) });

        var ex = Assert.Throws<PatcherException>(() => VerifyWith(GoldenManifest, envelope, 1, pub));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureInvalid).Or.EqualTo(PatchErrorCode.KeyInvalid));
    }

    [Test]
    public void Verify_P256SignatureUnderEd25519KeyId_FailsSignatureInvalid()
    {
        // The key decides the algorithm: a signature made by another algorithm's key, filed under this key's id, is
        // checked as Ed25519 and fails, whichever key made it.
        var p256 = SigningKeys.Sign(GoldenManifest, File.ReadAllText(RepoPaths.TestKey));
        var edId = GoldenEnvelope.Signatures[0].KeyId;
        var envelope = Envelope(p256 with { KeyId = edId });

        Assert.That(RefusalOf(GoldenManifest, envelope, RepoPaths.TestEd25519Pub), Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void Verify_Ed25519SignatureUnderP256KeyId_FailsSignatureInvalid()
    {
        var p256Id = SigningKeys.Sign(GoldenManifest, File.ReadAllText(RepoPaths.TestKey)).KeyId;
        var envelope = Envelope(GoldenEnvelope.Signatures[0] with { KeyId = p256Id });

        Assert.That(RefusalOf(GoldenManifest, envelope, RepoPaths.TestPub), Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void KeyIds_OfEd25519AndP256Keys_NameTheAlgorithmThroughTheSpki()
    {
        using var ed = TrustedKey.FromPem(File.ReadAllText(RepoPaths.TestEd25519Pub), "ed");
        using var p = TrustedKey.FromPem(File.ReadAllText(RepoPaths.TestPub), "p");

        Assert.That((ed.Algorithm, p.Algorithm), Is.EqualTo((SigningAlgorithm.Ed25519, SigningAlgorithm.EcdsaP256)));
        Assert.That(File.ReadAllText(Path.Join(RepoPaths.Keys, "README.md")), Does.Contain(ed.KeyId).And.Contain(p.KeyId));
    }

    [Test]
    public void Keygen_Default_IsEd25519AndP256OnRequest()
    {
        using var temp = TempDir.ForCurrentTest();

        var ed = CliRunner.Expect(0, "keygen", "--out", temp["ed"]);
        var p = CliRunner.Expect(0, "keygen", "--out", temp["p"], "--algorithm", "p256");
        var bad = CliRunner.Expect(2, "keygen", "--out", temp["bad"], "--algorithm", "rsa");

        using var edKey = TrustedKey.FromPem(File.ReadAllText(Path.Join(temp["ed"], SigningKeys.PublicKeyFileName)), "ed");
        using var pKey = TrustedKey.FromPem(File.ReadAllText(Path.Join(temp["p"], SigningKeys.PublicKeyFileName)), "p");
        Assert.That(edKey.Algorithm, Is.EqualTo(SigningAlgorithm.Ed25519));
        Assert.That(pKey.Algorithm, Is.EqualTo(SigningAlgorithm.EcdsaP256));
        Assert.That(ed.Out, Does.Contain("Ed25519"));
        Assert.That(p.Out, Does.Contain("ECDSA P-256"));
        Assert.That(bad.Err, Does.Contain("ed25519 or p256"));
        Assert.That(Directory.Exists(temp["bad"]), Is.False);
    }

    [Test]
    public void Sign_Ed25519_IsDeterministicAndP256IsNot()
    {
        var ed = File.ReadAllText(RepoPaths.TestEd25519Key);
        var p = File.ReadAllText(RepoPaths.TestKey);

        Assert.That(SigningKeys.Sign("x"u8, ed).Signature, Is.EqualTo(SigningKeys.Sign("x"u8, ed).Signature));
        Assert.That(SigningKeys.Sign("x"u8, p).Signature, Is.Not.EqualTo(SigningKeys.Sign("x"u8, p).Signature));
    }
}
