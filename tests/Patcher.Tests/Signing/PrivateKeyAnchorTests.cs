using System.Security.Cryptography;
using Patching.Signing;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Signing;

/// <summary>
/// A trust anchor is a public key. Pinning the private key by mistake would ship it to every player, so every form of
/// a private key is refused where a trusted key is expected (library and patchtool), with a message that says which
/// file to pin; and keygen keeps the private key out of the places that reach players.
/// </summary>
public sealed class PrivateKeyAnchorTests
{
    private static string PrivatePem => File.ReadAllText(RepoPaths.TestKey);

    /// <summary>Every way a P-256 or Ed25519 private key is commonly written down, each as the text a launcher would pin.</summary>
    public static IEnumerable<TestCaseData> PrivateKeyForms()
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(RepoPaths.TestKey));
        var pkcs8 = key.ExportPkcs8PrivateKey();
        yield return new TestCaseData(key.ExportPkcs8PrivateKeyPem()).SetArgDisplayNames("pkcs8-pem");
        yield return new TestCaseData(key.ExportECPrivateKeyPem()).SetArgDisplayNames("sec1-ec-private-key-pem");
        yield return new TestCaseData(key.ExportEncryptedPkcs8PrivateKeyPem("pw", new PbeParameters(PbeEncryptionAlgorithm.Aes128Cbc, HashAlgorithmName.SHA256, 1000)))
            .SetArgDisplayNames("encrypted-pkcs8-pem");
        yield return new TestCaseData(key.ExportSubjectPublicKeyInfoPem() + key.ExportPkcs8PrivateKeyPem()).SetArgDisplayNames("public-and-private-pem");
        yield return new TestCaseData(Convert.ToBase64String(pkcs8)).SetArgDisplayNames("pkcs8-der-base64");
        yield return new TestCaseData(Convert.ToHexString(pkcs8)).SetArgDisplayNames("pkcs8-der-hex");
        yield return new TestCaseData(Convert.ToHexStringLower(key.ExportParameters(true).D!)).SetArgDisplayNames("raw-scalar-hex");
        yield return new TestCaseData(Convert.ToBase64String(key.ExportParameters(true).D!)).SetArgDisplayNames("raw-scalar-base64");
        var ed25519 = File.ReadAllText(RepoPaths.TestEd25519Key);
        PemEncoding.TryFind(ed25519, out var fields);
        var edDer = Convert.FromBase64String(ed25519[fields.Base64Data]);
        yield return new TestCaseData(ed25519).SetArgDisplayNames("ed25519-pkcs8-pem");
        yield return new TestCaseData(Convert.ToBase64String(edDer)).SetArgDisplayNames("ed25519-pkcs8-der-base64");
        yield return new TestCaseData(Convert.ToHexStringLower(edDer[^32..])).SetArgDisplayNames("ed25519-raw-seed-hex");
        yield return new TestCaseData("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n").SetArgDisplayNames("openssh-private-key");
    }

    [TestCaseSource(nameof(PrivateKeyForms))]
    public void FromPems_PrivateKeyInAnyForm_FailsKeyInvalidNamingSigningPub(string text)
    {
        var ex = Assert.Throws<PatcherException>(() => TrustPolicy.FromPems([text], 1).Dispose());

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.KeyInvalid));
        Assert.That(ex.Message, Does.Contain("pin signing.pub"));
    }

    [Test]
    public void FromPems_PublicKeyPem_IsAccepted()
    {
        using var policy = TrustPolicy.FromPems([File.ReadAllText(RepoPaths.TestPub)], 1);

        Assert.That(policy.KeyCount, Is.EqualTo(1));
    }

    [Test]
    public void Apply_PrivateKeyAsTrustedKey_FailsKeyInvalidAndChangesNothing()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { TrustedKeys = [s.PrivateKey] }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.KeyInvalid));
        Assert.That(ex.Message, Does.Contain("private key").And.Contain("pin signing.pub"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before), "nothing on disk changed");
    }

    [TestCase("verify")]
    [TestCase("apply")]
    public void Cli_TrustPrivateKeyFile_FailsKeyInvalidNamingTheFile(string command)
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.Install();
        var keyFile = Path.Join(s.Dir("keys"), SigningKeys.PrivateKeyFileName);
        File.WriteAllText(keyFile, s.PrivateKey);
        var before = PatchScenario.Listing(s.Root);
        string[] args = command == "apply"
            ? ["apply", "--patch", s.PatchDir, "--target", s.InstallDir, "--trust", keyFile]
            : ["verify", "--patch", s.PatchDir, "--trust", keyFile];

        var result = CliRunner.Expect(3, args);

        Assert.That(result.Err, Does.StartWith("patchtool: error KeyInvalid (113)"));
        Assert.That(result.Err, Does.Contain(keyFile).And.Contain("pin signing.pub"));
        Assert.That(result.Out, Does.Not.Contain("signature   ok"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before), "nothing on disk changed");
    }

    [Test]
    public void Cli_TrustBinaryDerPrivateKey_FailsKeyInvalid()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(RepoPaths.TestKey));
        var der = Path.Join(s.Dir("keys"), "signing.der");
        File.WriteAllBytes(der, key.ExportPkcs8PrivateKey());

        var result = CliRunner.Expect(3, "verify", "--patch", s.PatchDir, "--trust", der);

        Assert.That(result.Err, Does.StartWith("patchtool: error KeyInvalid (113)").And.Contain("private key"));
    }

    [TestCase("install", "a game install Patcher updates")]
    [TestCase("patch", "a patch directory")]
    public void Keygen_IntoDirectoryThatReachesPlayers_RefusesAndWritesNothing(string which, string reason)
    {
        using var s = new PatchScenario().WithSmallGame();
        s.BuildPatch();
        s.InstallThroughPatcher();
        var dir = which == "install" ? s.InstallDir : s.PatchDir;
        var before = PatchScenario.Listing(s.Root);

        var result = CliRunner.Expect(2, "keygen", "--out", dir);

        Assert.That(result.Err, Does.Contain($"'{dir}' is {reason}").And.Contain("players get it"));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Keygen_IntoFolderInsideInstall_Refuses()
    {
        using var s = new PatchScenario().WithSmallGame();
        s.InstallThroughPatcher();

        var result = CliRunner.Expect(2, "keygen", "--out", Path.Join(s.InstallDir, "tools", "keys"));

        Assert.That(result.Err, Does.Contain("is inside"));
        Assert.That(Directory.Exists(Path.Join(s.InstallDir, "tools")), Is.False);
    }
}
