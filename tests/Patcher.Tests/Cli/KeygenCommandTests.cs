using Patching.Signing;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

public sealed class KeygenCommandTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp() => _temp = TempDir.ForCurrentTest();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private string KeyPath => _temp[Path.Join("keys", SigningKeys.PrivateKeyFileName)];
    private string PubPath => _temp[Path.Join("keys", SigningKeys.PublicKeyFileName)];

    [Test]
    public void Keygen_NewDirectory_WritesPemPairAndPrintsKeyId()
    {
        var result = CliRunner.Expect(0, "keygen", "--out", _temp["keys"]);

        Assert.That(File.ReadAllText(KeyPath), Does.StartWith("-----BEGIN PRIVATE KEY-----"));
        Assert.That(File.ReadAllText(PubPath), Does.StartWith("-----BEGIN PUBLIC KEY-----"));
        Assert.That(result.Out, Does.Contain(PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(PubPath))));
    }

    [Test]
    public void Keygen_PrivateKeyFile_IsReadableByOwnerOnly()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("Unix permissions");
            return;
        }

        CliRunner.Expect(0, "keygen", "--out", _temp["keys"]);

        Assert.That(File.GetUnixFileMode(KeyPath), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Test]
    public void Keygen_ExistingKeys_RefusesAndKeepsThem()
    {
        CliRunner.Expect(0, "keygen", "--out", _temp["keys"]);
        var before = File.ReadAllText(KeyPath);

        var result = CliRunner.Expect(2, "keygen", "--out", _temp["keys"]);

        Assert.That(result.Err, Does.Contain("already exists").And.Contain("--force"));
        Assert.That(File.ReadAllText(KeyPath), Is.EqualTo(before));
    }

    [Test]
    public void Keygen_OnlyPublicKeyExists_StillRefuses()
    {
        Directory.CreateDirectory(_temp["keys"]);
        File.WriteAllText(PubPath, "pinned somewhere");

        CliRunner.Expect(2, "keygen", "--out", _temp["keys"]);

        Assert.That(File.Exists(KeyPath), Is.False);
    }

    [Test]
    public void Keygen_ExistingKeysWithForce_ReplacesThePair()
    {
        CliRunner.Expect(0, "keygen", "--out", _temp["keys"]);
        var before = File.ReadAllText(PubPath);

        CliRunner.Expect(0, "keygen", "--out", _temp["keys"], "--force");

        Assert.That(File.ReadAllText(PubPath), Is.Not.EqualTo(before));
    }
}
