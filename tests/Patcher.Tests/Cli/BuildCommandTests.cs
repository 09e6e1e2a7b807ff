using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

public sealed class BuildCommandTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        SamplePatch.CopyTrees(_temp);
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private string[] Args(params string[] extra) =>
    [
        "build", "--format", "1", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "sample-game",
        "--version", "1.1.0", "--from-version", "1.0.0", .. extra,
    ];

    [Test]
    public void Build_SignedDelta_PrintsSummaryAndWritesSignature()
    {
        var result = CliRunner.Expect(0, Args("--key", RepoPaths.TestKey));

        Assert.That(result.Out, Does.Contain("built patch sample-game 1.0.0 -> 1.1.0"));
        Assert.That(result.Out, Does.Contain("2 added, 3 changed, 2 removed, 2 unchanged"));
        Assert.That(File.Exists(_temp[Path.Join("patch", ManifestCodec.SignatureFileName)]), Is.True);
    }

    [Test]
    public void Build_WithoutKey_SaysUnsigned()
    {
        var result = CliRunner.Expect(0, Args());

        Assert.That(result.Out, Does.Contain("UNSIGNED"));
        Assert.That(File.Exists(_temp[Path.Join("patch", ManifestCodec.SignatureFileName)]), Is.False);
    }

    [Test]
    public void Build_WithoutFrom_WritesFullPackage()
    {
        var result = CliRunner.Expect(0, "build", "--format", "1", "--to", _temp["v2"], "--out", _temp["full"], "--product", "sample-game", "--version", "1.1.0");

        Assert.That(result.Out, Does.Contain("built full package sample-game 1.1.0"));
        var m = ManifestCodec.Deserialize(File.ReadAllBytes(_temp[Path.Join("full", ManifestCodec.ManifestFileName)]));
        Assert.That(m.FromVersion, Is.Null);
        Assert.That(m.Base, Is.Empty);
    }

    [Test]
    public void Build_FromWithoutFromVersion_IsUsageError()
    {
        var result = CliRunner.Expect(2, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "p", "--version", "2");

        Assert.That(result.Err, Does.Contain("--from-version is required with --from"));
    }

    [Test]
    public void Build_FromVersionWithoutFrom_IsUsageError()
    {
        CliRunner.Expect(2, "build", "--to", _temp["v2"], "--out", _temp["patch"], "--product", "p", "--version", "2", "--from-version", "1");
    }

    [TestCase("1.x")]
    [TestCase("v1.1")]
    [TestCase("1.2.3.4.5")]
    public void Build_MalformedVersion_IsUsageError(string version)
    {
        var result = CliRunner.Expect(2, "build", "--to", _temp["v2"], "--out", _temp["patch"], "--product", "p", "--version", version);

        Assert.That(result.Err, Does.Contain("is not a version"));
    }

    [Test]
    public void Build_VersionNotNewerThanFromVersion_IsRefused()
    {
        var result = CliRunner.Run("build", "--format", "1", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "p",
            "--version", "1.0.0", "--from-version", "1.0.0");

        Assert.That(result.ExitCode, Is.EqualTo(3), result.ToString);
        Assert.That(result.Err, Does.StartWith("patchtool: error NotNewer (141)"));
    }

    [Test]
    public void Build_ExpiresInThePast_IsUsageError()
    {
        var result = CliRunner.Expect(2, Args("--expires", "2001-01-01T00:00:00Z"));

        Assert.That(result.Err, Does.Contain("in the past"));
    }

    [Test]
    public void Build_ExpiresNotADate_IsUsageError()
    {
        CliRunner.Expect(2, Args("--expires", "next tuesday"));
    }

    [Test]
    public void Build_Expires_IsWrittenToTheManifestInUtc()
    {
        CliRunner.Expect(0, Args("--expires", "2099-06-30T12:00:00+02:00"));

        var m = ManifestCodec.Deserialize(File.ReadAllBytes(_temp[Path.Join("patch", ManifestCodec.ManifestFileName)]));
        Assert.That(m.Expires, Is.EqualTo(new DateTimeOffset(2099, 6, 30, 10, 0, 0, TimeSpan.Zero)));
        Assert.That(m.Expires!.Value.Offset, Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void Build_MissingToDirectory_IsUsageError()
    {
        CliRunner.Expect(2, "build", "--to", _temp["nope"], "--out", _temp["patch"], "--product", "p", "--version", "1");
    }

    [Test]
    public void Build_MissingKeyFile_IsUsageError()
    {
        CliRunner.Expect(2, Args("--key", _temp["nokey"]));
    }

    [Test]
    public void Build_OutInsideTheNewTree_IsUsageError()
    {
        var result = CliRunner.Expect(2, "build", "--to", _temp["v2"], "--out", _temp[Path.Join("v2", "patch")], "--product", "p", "--version", "1");

        Assert.That(result.Err, Does.Contain("overlaps"));
        Assert.That(Directory.Exists(_temp[Path.Join("v2", "patch")]), Is.False);
    }

    [Test]
    public void Build_NonEmptyOut_IsUsageErrorWithoutForce()
    {
        CliRunner.Expect(0, Args());

        var result = CliRunner.Expect(2, Args());

        Assert.That(result.Err, Does.Contain("not empty"));
    }

    [Test]
    public void Build_ExistingPatchWithForce_ReplacesItWithoutStaleBlobs()
    {
        CliRunner.Expect(0, "build", "--format", "1", "--to", _temp["v1"], "--out", _temp["patch"], "--product", "p", "--version", "1");

        CliRunner.Expect(0, Args("--force"));

        var m = ManifestCodec.Deserialize(File.ReadAllBytes(_temp[Path.Join("patch", ManifestCodec.ManifestFileName)]));
        var blobFiles = Directory.GetFiles(_temp[Path.Join("patch", "blobs")], "*", SearchOption.AllDirectories);
        Assert.That(blobFiles, Has.Length.EqualTo(m.Blobs.Count));
    }

    [Test]
    public void Build_ForceOnDirectoryWithForeignFiles_Refuses()
    {
        Directory.CreateDirectory(_temp["patch"]);
        File.WriteAllText(_temp[Path.Join("patch", "notes.txt")], "mine");

        CliRunner.Expect(2, Args("--force"));

        Assert.That(File.Exists(_temp[Path.Join("patch", "notes.txt")]), Is.True);
    }

    [Test]
    public void Build_NoFormatOption_WritesFormat2AndPrintsReusedDeltaAndWholeBytes()
    {
        var result = CliRunner.Expect(0, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "sample-game",
            "--version", "1.1.0", "--from-version", "1.0.0", "--key", RepoPaths.TestKey);

        Assert.That(File.Exists(_temp[Path.Join("patch", ManifestCodec.BinaryManifestFileName)]), Is.True);
        Assert.That(File.Exists(_temp[Path.Join("patch", ManifestCodec.ManifestFileName)]), Is.False);
        Assert.That(result.Out, Does.Contain("format     2, zstd level 19"));
        Assert.That(result.Out, Does.Contain("reused").And.Contain("deltas").And.Contain("whole"));
    }

    [Test]
    public void Build_Json_ReportsTheBytesOfEveryPartOfThePatch()
    {
        var result = CliRunner.Expect(0, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "sample-game",
            "--version", "1.1.0", "--from-version", "1.0.0", "--key", RepoPaths.TestKey, "--level", "5", "--json");

        using var doc = System.Text.Json.JsonDocument.Parse(result.Out);
        var root = doc.RootElement;
        long Get(string name) => root.GetProperty(name).GetInt64();
        var dir = _temp["patch"];
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("ok").GetBoolean(), Is.True);
            Assert.That(Get("format"), Is.EqualTo(2));
            Assert.That(Get("level"), Is.EqualTo(5));
            Assert.That(Get("manifestBytes"), Is.EqualTo(new FileInfo(Path.Join(dir, ManifestCodec.BinaryManifestFileName)).Length));
            Assert.That(Get("signatureBytes"), Is.EqualTo(new FileInfo(Path.Join(dir, ManifestCodec.SignatureFileName)).Length));
            Assert.That(Get("payloadBytes"), Is.EqualTo(new FileInfo(Path.Join(dir, Patching.Manifests.DeltaLimits.PayloadFileName)).Length));
            Assert.That(Get("deltaBytes") + Get("wholeBytes"), Is.EqualTo(Get("payloadBytes")));
            // base.msgpack is beside the patch for installs that need it, not part of what every install downloads.
            Assert.That(Get("baseManifestBytes"), Is.EqualTo(new FileInfo(Path.Join(dir, Patching.Manifests.VersionManifest.FileName)).Length));
            Assert.That(Get("totalBytes") + Get("baseManifestBytes"), Is.EqualTo(Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length)));
            // The sample renames theme.ogg and keeps two files: their bytes come from the installed version.
            Assert.That(Get("reusedBytes"), Is.GreaterThan(0));
            Assert.That(Get("reusedBytes") + Get("deltaContentBytes") + Get("wholeContentBytes"), Is.EqualTo(Get("targetBytes")));
        });
    }

    [Test]
    public void Build_LevelOutOfRange_UsageError()
    {
        var result = CliRunner.Expect(2, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch"], "--product", "sample-game",
            "--version", "1.1.0", "--from-version", "1.0.0", "--level", "23");

        Assert.That(result.Err, Does.Contain("--level 23"));
    }
}
