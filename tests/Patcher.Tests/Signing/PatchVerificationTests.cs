using System.Text;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Signing;

/// <summary>
/// keygen → build → verify through patchtool on two generated trees, and every way a patch can be tampered
/// with: each must be refused with a specific code (exit 3), never accepted.
/// </summary>
public sealed class PatchVerificationTests
{
    private TempDir _temp = null!;
    private string _key = null!;
    private string _pub = null!;
    private string _patch = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        CliRunner.Expect(0, "keygen", "--out", _temp["keys"]);
        _key = _temp[Path.Join("keys", SigningKeys.PrivateKeyFileName)];
        _pub = _temp[Path.Join("keys", SigningKeys.PublicKeyFileName)];
        var (oldDir, newDir) = TreeFactory.WritePair(_temp, seed: 1234, files: 20);
        _patch = _temp["patch"];
        CliRunner.Expect(0, "build", "--format", "1", "--from", oldDir, "--to", newDir, "--out", _patch, "--key", _key,
            "--product", "tree-game", "--version", "2.0.0", "--from-version", "1.0.0");
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private string ManifestPath => Path.Join(_patch, ManifestCodec.ManifestFileName);
    private string SignaturePath => Path.Join(_patch, ManifestCodec.SignatureFileName);

    private static void AssertRefused(CliResult result, PatchErrorCode code)
    {
        Assert.That(result.ExitCode, Is.EqualTo(3), result.ToString);
        Assert.That(result.Err, Does.StartWith($"patchtool: error {code} ({(int)code}): "), result.ToString);
        Assert.That(result.Err, Does.Not.Contain("   at "), "no stack trace for a PatcherException");
    }

    private static PatcherException VerifyThroughApi(string patch, string pub, int threshold = 1, params string[] morePubs)
    {
        return Assert.Throws<PatcherException>(() =>
        {
            using var policy = TrustPolicy.FromPems([File.ReadAllText(pub), .. morePubs.Select(File.ReadAllText)], threshold);
            var package = PatchPackage.Open(patch, ManifestLimits.Default);
            package.VerifySignature(policy, ManifestLimits.Default, DateTimeOffset.UtcNow);
            package.VerifyAllBlobs(CancellationToken.None);
        })!;
    }

    [Test]
    public void Verify_FreshlyBuiltSignedPatch_Succeeds()
    {
        var result = CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", _pub);

        Assert.That(result.Out, Does.Contain("signature   ok"));
        Assert.That(result.Err, Is.Empty);
    }

    [Test]
    public void Verify_ManifestHashDigitFlipped_FailsSignatureInvalid()
    {
        var bytes = File.ReadAllBytes(ManifestPath);
        var at = Encoding.ASCII.GetString(bytes).IndexOf("\"sha256\": \"", StringComparison.Ordinal) + 11;
        bytes[at] ^= 0x01; // '0'<->'1', 'a'<->'`' ... still a JSON string: only the signature can tell
        File.WriteAllBytes(ManifestPath, bytes);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.SignatureInvalid);
    }

    [Test]
    public void Verify_ManifestOpeningBraceFlipped_IsRefused()
    {
        var bytes = File.ReadAllBytes(ManifestPath);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(ManifestPath, bytes);

        var result = CliRunner.Run("verify", "--patch", _patch, "--trust", _pub);

        // Signature first (the parser never sees untrusted bytes) or parse first: either way, refused.
        Assert.That(result.ExitCode, Is.EqualTo(3), result.ToString);
        Assert.That(result.Err, Does.StartWith("patchtool: error SignatureInvalid (111)").Or.StartWith("patchtool: error ManifestMalformed (101)"));
    }

    [Test]
    public void Verify_SignedButNotJson_FailsManifestMalformed()
    {
        var bytes = File.ReadAllBytes(ManifestPath);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(ManifestPath, bytes);
        PatchFiles.ResignRaw(_patch, _key);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.ManifestMalformed);
    }

    [Test]
    public void Verify_AnySingleManifestByteFlipped_IsAlwaysRefused()
    {
        // A small patch (every byte is tried, ~0.5 ms each).
        TreeFactory.Write(_temp["small"], seed: 99, files: 3);
        var patch = _temp["small-patch"];
        CliRunner.Expect(0, "build", "--format", "1", "--to", _temp["small"], "--out", patch, "--key", _key, "--product", "p", "--version", "1");
        var manifestPath = Path.Join(patch, ManifestCodec.ManifestFileName);
        var original = File.ReadAllBytes(manifestPath);
        using var policy = TrustPolicy.FromPems([File.ReadAllText(_pub)], 1);
        var codes = new SortedSet<PatchErrorCode>();
        for (var i = 0; i < original.Length; i++)
        {
            var bytes = (byte[])original.Clone();
            bytes[i] ^= 0x01;
            File.WriteAllBytes(manifestPath, bytes);
            var ex = Assert.Throws<PatcherException>(() =>
                PatchPackage.Open(patch, ManifestLimits.Default).VerifySignature(policy, ManifestLimits.Default, DateTimeOffset.UtcNow));
            Assert.That((int)ex!.Code, Is.InRange(100, 199), $"byte {i}: {ex.Code}");
            codes.Add(ex.Code);
        }

        Assert.That(codes, Does.Contain(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void Verify_SignatureByteFlipped_FailsSignatureInvalid()
    {
        var envelope = ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(SignaturePath));
        var raw = Convert.FromBase64String(envelope.Signatures[0].Signature);
        raw[17] ^= 0x80;
        var tampered = envelope with { Signatures = [envelope.Signatures[0] with { Signature = Convert.ToBase64String(raw) }] };
        File.WriteAllBytes(SignaturePath, ManifestCodec.SerializeEnvelope(tampered));

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.SignatureInvalid);
    }

    [Test]
    public void Verify_SignatureFileGarbled_FailsSignatureInvalid()
    {
        var bytes = File.ReadAllBytes(SignaturePath);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(SignaturePath, bytes);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.SignatureInvalid);
    }

    [Test]
    public void Verify_AnyBlobByteFlipped_FailsBlobHashOrSizeMismatch()
    {
        var manifest = ManifestCodec.Deserialize(File.ReadAllBytes(ManifestPath));
        Assert.That(manifest.Blobs, Has.Count.GreaterThan(2));
        foreach (var blob in manifest.Blobs.Where(b => b.StoredSize > 0))
        {
            var path = Path.Join(_patch, blob.RelativePath);
            var original = File.ReadAllBytes(path);
            var bytes = (byte[])original.Clone();
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(path, bytes);

            var result = CliRunner.Run("verify", "--patch", _patch, "--trust", _pub);

            Assert.That(result.ExitCode, Is.EqualTo(3), $"{blob.RelativePath}\n{result}");
            var expected = blob.Compression == BlobCompression.None
                ? new[] { PatchErrorCode.BlobHashMismatch } // a raw blob keeps its length
                : [PatchErrorCode.BlobHashMismatch, PatchErrorCode.BlobSizeMismatch];
            Assert.That(expected.Any(c => result.Err.StartsWith($"patchtool: error {c} ({(int)c})", StringComparison.Ordinal)), Is.True, result.ToString);
            Assert.That(result.Err, Does.Contain(blob.Sha256), "the message names the blob");
            File.WriteAllBytes(path, original);
        }

        CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", _pub);
    }

    [Test]
    public void Verify_BlobTruncated_FailsBlobSizeMismatch()
    {
        var blob = ManifestCodec.Deserialize(File.ReadAllBytes(ManifestPath)).Blobs.First(b => b.StoredSize > 1);
        var path = Path.Join(_patch, blob.RelativePath);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^1]);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.BlobSizeMismatch);
    }

    [Test]
    public void Verify_BlobDeleted_FailsBlobMissing()
    {
        var blob = ManifestCodec.Deserialize(File.ReadAllBytes(ManifestPath)).Blobs[0];
        File.Delete(Path.Join(_patch, blob.RelativePath));

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.BlobMissing);
    }

    [Test]
    public void Verify_WithAnotherKey_FailsSignatureInvalid()
    {
        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", RepoPaths.TestPub2), PatchErrorCode.SignatureInvalid);
        Assert.That(VerifyThroughApi(_patch, RepoPaths.TestPub2).Code, Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void Verify_PrivateKeyOfAnotherCurve_FailsKeyInvalid()
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var rsaPub = _temp["rsa.pub"];
        File.WriteAllText(rsaPub, rsa.ExportSubjectPublicKeyInfoPem());

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", rsaPub), PatchErrorCode.KeyInvalid);
    }

    [Test]
    public void Verify_ThresholdTwoWithTwoSignatures_Passes()
    {
        CliRunner.Expect(0, "sign", "--patch", _patch, "--key", RepoPaths.TestKey2);

        var result = CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", _pub, "--trust", RepoPaths.TestPub2, "--threshold", "2", "--json");

        Assert.That(result.Json().GetProperty("verifiedKeyIds").GetArrayLength(), Is.EqualTo(2));
    }

    [Test]
    public void Verify_ThresholdTwoWithOneSignature_FailsThresholdNotMet()
    {
        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub, "--trust", RepoPaths.TestPub2, "--threshold", "2"),
            PatchErrorCode.SignatureThresholdNotMet);
    }

    [Test]
    public void Verify_ThresholdTwoWithSameKeyTwice_FailsThresholdNotMet()
    {
        // Two copies of one key are one key: a threshold counts distinct signers.
        CliRunner.Expect(0, "sign", "--patch", _patch, "--key", _key);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub, "--trust", _pub, "--threshold", "2"),
            PatchErrorCode.SignatureThresholdNotMet);
    }

    [Test]
    public void Verify_UnsignedPatch_FailsSignatureMissing()
    {
        File.Delete(SignaturePath);

        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.SignatureMissing);
    }

    [Test]
    public void Sign_UnsignedPatch_MakesItVerify()
    {
        File.Delete(SignaturePath);
        AssertRefused(CliRunner.Run("verify", "--patch", _patch, "--trust", _pub), PatchErrorCode.SignatureMissing);

        CliRunner.Expect(0, "sign", "--patch", _patch, "--key", _key);

        CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", _pub);
    }

    [Test]
    public void Sign_SecondKey_KeepsFirstSignature()
    {
        var result = CliRunner.Expect(0, "sign", "--patch", _patch, "--key", RepoPaths.TestKey2);

        Assert.That(result.Out, Does.Contain("signatures  2"));
        CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", _pub);
        CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub2);
    }

    [Test]
    public void Sign_SameKeyAgain_ReplacesItsSignature()
    {
        CliRunner.Expect(0, "sign", "--patch", _patch, "--key", _key);

        Assert.That(ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(SignaturePath)).Signatures, Has.Count.EqualTo(1));
    }

    [Test]
    public void Sign_WithPublicKeyFile_FailsKeyInvalid()
    {
        AssertRefused(CliRunner.Run("sign", "--patch", _patch, "--key", _pub), PatchErrorCode.KeyInvalid);
    }

    [Test]
    public void Verify_ExpiredPatch_FailsManifestExpired()
    {
        var expires = DateTimeOffset.UtcNow.AddDays(1);
        var (oldDir, newDir) = (_temp["old"], _temp["new"]);
        CliRunner.Expect(0, "build", "--format", "1", "--from", oldDir, "--to", newDir, "--out", _temp["expiring"], "--key", _key, "--product", "tree-game",
            "--version", "2.0.0", "--from-version", "1.0.0", "--expires", expires.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var ctx = new PatchTool.Infrastructure.ToolContext(output, error, isTerminal: false);
        var settings = new PatchTool.Commands.VerifyCommand.Settings(_temp["expiring"], [_pub], 1, null, false, new FixedTimeProvider(expires.AddSeconds(1)));

        var exit = PatchTool.Infrastructure.CommandRunner.Run(ctx, false, false,
            () => PatchTool.Commands.VerifyCommand.Run(ctx, settings, CancellationToken.None));

        Assert.That(exit, Is.EqualTo(3));
        Assert.That(error.ToString(), Does.StartWith("patchtool: error ManifestExpired (114)"));
        CliRunner.Expect(0, "verify", "--patch", _temp["expiring"], "--trust", _pub);
    }

    [Test]
    public void VerifyFixtureKeys_SignAndVerifyPair_AgreeOnKeyIds()
    {
        var one = PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(RepoPaths.TestPub));
        var two = PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(RepoPaths.TestPub2));
        var signed = SigningKeys.Sign("x"u8, File.ReadAllText(RepoPaths.TestKey));

        Assert.That(one, Is.Not.EqualTo(two));
        Assert.That(signed.KeyId, Is.EqualTo(one));
        Assert.That(File.ReadAllText(Path.Join(RepoPaths.Keys, "README.md")), Does.Contain(one).And.Contain(two).And.Contain("TEST ONLY"));
    }
}
