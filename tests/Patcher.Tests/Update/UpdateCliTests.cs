using System.Text.Json;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Update;

/// <summary><c>patchtool publish</c>, <c>check</c> and <c>update</c>, from a directory and over loopback HTTP.</summary>
[TestFixture]
[NonParallelizable]
public sealed class UpdateCliTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp() => _temp = TempDir.ForCurrentTest();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private void Publish(string version, int seed)
    {
        var tree = _temp["trees/" + version];
        TreeFactory.Write(tree, seed, files: 20);
        CliRunner.Expect(0, "publish", "--store", _temp["store"], "--tree", tree, "--product", "cli-game", "--version", version,
            "--key", RepoPaths.TestKey, "--channel", "stable");
    }

    [Test]
    public async Task Update_OverHttpThenCheck_InstallsLatestAndReportsUpToDateAsJson()
    {
        Publish("1.0.0", 1);
        Publish("2.0.0", 2);
        var install = _temp.Dir("installs/game");
        await using var server = await StoreServer.StartAsync(_temp["store"]);

        var check = CliRunner.Expect(0, "check", "--source", server.BaseUri.AbsoluteUri, "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(check.Out))
        {
            Assert.That(doc.RootElement.GetProperty("latestVersion").GetString(), Is.EqualTo("2.0.0"));
            Assert.That(doc.RootElement.GetProperty("updateAvailable").GetBoolean(), Is.True);
        }

        var update = CliRunner.Expect(0, "update", "--source", server.BaseUri.AbsoluteUri, "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(update.Out))
            Assert.That(doc.RootElement.GetProperty("status").GetString(), Is.EqualTo("updated"));
        Assert.That(HashListing.Text(install), Is.EqualTo(HashListing.Text(_temp["trees/2.0.0"])));

        File.Delete(Directory.EnumerateFiles(install, "*", SearchOption.AllDirectories).First());
        var repair = CliRunner.Expect(0, "repair", "--source", server.BaseUri.AbsoluteUri, "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(repair.Out))
            Assert.That(doc.RootElement.GetProperty("repaired").GetBoolean(), Is.True);
        Assert.That(HashListing.Text(install), Is.EqualTo(HashListing.Text(_temp["trees/2.0.0"])));

        var again = CliRunner.Expect(0, "check", "--source", server.BaseUri.AbsoluteUri, "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(again.Out))
            Assert.That(doc.RootElement.GetProperty("updateAvailable").GetBoolean(), Is.False);
    }

    [Test]
    public void Update_FromDirectoryWithUntrustedKey_ExitsRefusedAndChangesNothing()
    {
        Publish("1.0.0", 1);
        var install = _temp.Dir("installs/game");
        var result = CliRunner.Expect(3, "update", "--source", _temp["store"], "--target", install, "--trust", RepoPaths.TestPub2, "--json");
        using var doc = JsonDocument.Parse(result.Out);
        Assert.That(doc.RootElement.GetProperty("error").GetProperty("name").GetString(), Is.EqualTo(nameof(PatchErrorCode.SignatureInvalid)));
        Assert.That(Directory.EnumerateFileSystemEntries(install), Is.Empty);
    }

    [Test]
    public void Publish_SameVersionWithOtherContent_RefusedReleaseExists()
    {
        Publish("1.0.0", 1);
        var other = _temp["trees/other"];
        TreeFactory.Write(other, 99, files: 5);
        var result = CliRunner.Expect(3, "publish", "--store", _temp["store"], "--tree", other, "--product", "cli-game", "--version", "1.0.0",
            "--key", RepoPaths.TestKey, "--json");
        Assert.That(result.Out, Does.Contain(nameof(PatchErrorCode.ReleaseExists)));
    }

    [Test]
    public void Update_PublishedWithDeltaFrom_UsesTheDeltaThenRepairFullFindsAFlippedByte()
    {
        var v1 = _temp["trees/1.0.0"];
        var v2 = _temp["trees/2.0.0"];
        var big = TreeFactory.Content(new Random(5), 600_000, binary: true);
        TreeFactory.Write(v1, 1, files: 20);
        TreeFactory.WriteFile(v1, "data/big.pak", big);
        CliRunner.Expect(0, "publish", "--store", _temp["store"], "--tree", v1, "--product", "cli-game", "--version", "1.0.0",
            "--key", RepoPaths.TestKey, "--channel", "stable", "--level", "3");
        var install = _temp.Dir("installs/game");
        CliRunner.Expect(0, "update", "--source", _temp["store"], "--target", install, "--trust", RepoPaths.TestPub);
        TreeFactory.Write(v2, 1, files: 20);
        // 50 bytes inserted in the middle of the big file: a piece or two of random bytes to fetch, or a delta of about 50 bytes.
        TreeFactory.WriteFile(v2, "data/big.pak", [.. big.AsSpan(0, 300_000), .. new byte[50], .. big.AsSpan(300_000)]);
        var largest = Path.Join(v2, "data/big.pak");

        var published = CliRunner.Expect(0, "publish", "--store", _temp["store"], "--tree", v2, "--product", "cli-game", "--version", "2.0.0",
            "--key", RepoPaths.TestKey, "--channel", "stable", "--delta-from", "1.0.0", "--level", "3", "--json");
        using (var doc = JsonDocument.Parse(published.Out))
            Assert.That(doc.RootElement.GetProperty("deltaBytes").GetInt64(), Is.GreaterThan(0));
        var update = CliRunner.Expect(0, "update", "--source", _temp["store"], "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(update.Out))
            Assert.That(doc.RootElement.GetProperty("deltaFrom").GetString(), Is.EqualTo("1.0.0"));
        Assert.That(HashListing.Text(install), Is.EqualTo(HashListing.Text(v2)));

        var damaged = Path.Join(install, Path.GetRelativePath(v2, largest));
        var bytes = File.ReadAllBytes(damaged);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(damaged, bytes);
        var quick = CliRunner.Expect(0, "repair", "--source", _temp["store"], "--target", install, "--trust", RepoPaths.TestPub, "--json");
        using (var doc = JsonDocument.Parse(quick.Out))
            Assert.That(doc.RootElement.GetProperty("repaired").GetBoolean(), Is.False, "same size: the quick check does not see it");
        var full = CliRunner.Expect(0, "repair", "--source", _temp["store"], "--target", install, "--trust", RepoPaths.TestPub, "--full", "--json");
        using (var doc = JsonDocument.Parse(full.Out))
            Assert.That(doc.RootElement.GetProperty("repaired").GetBoolean(), Is.True);
        Assert.That(HashListing.Text(install), Is.EqualTo(HashListing.Text(v2)));
    }

    [Test]
    public void Update_NotATerminal_PrintsPlainDownloadingLinesButNoneWithJson()
    {
        Publish("1.0.0", 1);
        var plain = CliRunner.Expect(0, "update", "--source", _temp["store"], "--target", _temp.Dir("installs/plain"), "--trust", RepoPaths.TestPub);
        Assert.That(plain.Out, Does.Contain("[downloading]").And.Contain("[staging]").And.Contain("updated (nothing) -> 1.0.0"));

        var json = CliRunner.Expect(0, "update", "--source", _temp["store"], "--target", _temp.Dir("installs/json"), "--trust", RepoPaths.TestPub, "--json");
        Assert.That(json.Out, Does.Not.Contain("[downloading]"));
        using var doc = JsonDocument.Parse(json.Out);
        Assert.That(doc.RootElement.GetProperty("status").GetString(), Is.EqualTo("updated"));
    }
}
