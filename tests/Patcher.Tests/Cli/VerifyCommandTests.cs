using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

public sealed class VerifyCommandTests
{
    private TempDir _temp = null!;
    private string _patch = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        _patch = SamplePatch.Build(_temp);
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public void Verify_Json_ReportsKeysBlobsAndOk()
    {
        var json = CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--json").Json();

        Assert.That(json.GetProperty("ok").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("blobsChecked").GetInt32(), Is.EqualTo(4));
        Assert.That(json.GetProperty("verifiedKeyIds").GetArrayLength(), Is.EqualTo(1));
        Assert.That(json.GetProperty("target").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
    }

    [Test]
    public void Verify_ChangesOnlyWithoutBaseManifest_ReportsSignatureAndChangesAndThatTheBaseIsNeededOnlyToApply()
    {
        using var s = new PatchScenario("verify-changes").WithFormat(2);
        for (var i = 0; i < 20; i++)
        {
            PatchScenario.Write(s.OldTree, $"data/{i}.txt", $"file {i}");
            PatchScenario.Write(s.NewTree, $"data/{i}.txt", i == 3 ? "file 3, changed" : $"file {i}");
        }

        PatchScenario.Write(s.NewTree, "data/new.txt", "added in 2.0.0");
        s.BuildPatch();
        File.Delete(Path.Join(s.PatchDir, VersionManifest.FileName));
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);

        var result = CliRunner.Expect(0, "verify", "--patch", s.PatchDir, "--trust", trust);

        Assert.That(result.Out, Does.Contain("signature   ok: 1 trusted key(s)"));
        Assert.That(result.Out, Does.Contain("1.0.0 -> 2.0.0"));
        Assert.That(result.Out, Does.Contain("1 added, 1 changed, 0 removed"));
        Assert.That(result.Out, Does.Contain("needed only to apply"));
    }

    [Test]
    public void Verify_ChangesOnlyWithoutBaseManifestAndAnotherKey_SignatureInvalid()
    {
        using var s = new PatchScenario("verify-changes-key").WithFormat(2);
        PatchScenario.Write(s.OldTree, "a.txt", "one");
        PatchScenario.Write(s.NewTree, "a.txt", "two");
        s.BuildPatch();
        File.Delete(Path.Join(s.PatchDir, VersionManifest.FileName));

        var result = CliRunner.Expect(3, "verify", "--patch", s.PatchDir, "--trust", RepoPaths.TestPub2);

        Assert.That(result.Err, Does.StartWith("patchtool: error SignatureInvalid"));
    }

    [Test]
    public void Verify_FailureWithJson_PrintsErrorDocumentAndStderrLine()
    {
        var result = CliRunner.Expect(3, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub2, "--json");

        var json = result.Json();
        Assert.That(json.GetProperty("ok").GetBoolean(), Is.False);
        Assert.That(json.GetProperty("error").GetProperty("name").GetString(), Is.EqualTo("SignatureInvalid"));
        Assert.That(result.Err, Does.StartWith("patchtool: error SignatureInvalid (111)"));
    }

    [Test]
    public void Verify_TargetMatchingTheBase_PassesAndIgnoresUserFiles()
    {
        var install = SamplePatch.Install(_temp);

        var result = CliRunner.Expect(0, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--target", install);

        Assert.That(result.Out, Does.Contain("all 7 base files match"));
    }

    [Test]
    public void Verify_TargetWithModifiedAndMissingFiles_ExitsInstallProblemBaseMismatch()
    {
        var install = SamplePatch.Install(_temp);
        File.AppendAllText(Path.Join(install, "game.cfg"), "cheats=on\n");
        var level1 = Path.Join(install, "data", "levels", "level1.dat");
        var bytes = File.ReadAllBytes(level1);
        bytes[10] ^= 0xff; // same size, other content
        File.WriteAllBytes(level1, bytes);
        File.Delete(Path.Join(install, "data", "intro.txt"));

        var result = CliRunner.Expect(4, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--target", install, "--json");

        var json = result.Json();
        Assert.That(json.GetProperty("ok").GetBoolean(), Is.False);
        var target = json.GetProperty("target");
        Assert.That(target.GetProperty("missing").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "data/intro.txt" }));
        Assert.That(target.GetProperty("modified").EnumerateArray().Select(e => e.GetString()),
            Is.EquivalentTo(new[] { "game.cfg", "data/levels/level1.dat" }));
        Assert.That(json.GetProperty("error").GetProperty("code").GetInt32(), Is.EqualTo((int)PatchErrorCode.BaseMismatch));
        Assert.That(result.Err, Does.StartWith("patchtool: error BaseMismatch (201): 3 of 7 base file(s)"));
    }

    [Test]
    public void Verify_TargetWithSymlinkedDirectory_ReportsItInsteadOfFollowing()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("symlinks need privileges on Windows");
        var install = SamplePatch.Install(_temp);
        var levels = Path.Join(install, "data", "levels");
        Directory.Move(levels, _temp["elsewhere"]);
        Directory.CreateSymbolicLink(levels, _temp["elsewhere"]);

        var result = CliRunner.Expect(4, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--target", install);

        Assert.That(result.Out, Does.Contain("'data/levels' is a symlink"));
    }

    [Test]
    public void Verify_TargetMissing_ExitsInstallNotFound()
    {
        var result = CliRunner.Expect(4, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--target", _temp["no-install"]);

        Assert.That(result.Err, Does.StartWith("patchtool: error InstallNotFound (200)"));
    }

    [Test]
    public void Verify_SignedManifestWithUnknownField_ExitsManifestMalformed()
    {
        PatchFiles.EditManifest(_patch, "\"format\": 1,", "\"format\": 1,\n  \"installScript\": \"rm -rf /\",");
        PatchFiles.ResignRaw(_patch, RepoPaths.TestKey);

        var result = CliRunner.Expect(3, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub);

        Assert.That(result.Err, Does.StartWith("patchtool: error ManifestMalformed (101)"));
    }

    [Test]
    public void Verify_SignedManifestWithTraversalPath_ExitsUnsafePath()
    {
        PatchFiles.EditManifest(_patch, "\"path\": \"game.cfg\"", "\"path\": \"../game.cfg\"");
        PatchFiles.ResignRaw(_patch, RepoPaths.TestKey);

        var result = CliRunner.Expect(3, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub);

        Assert.That(result.Err, Does.StartWith("patchtool: error UnsafePath (120)"));
    }

    [Test]
    public void Verify_MissingTrustFile_IsUsageError()
    {
        var result = CliRunner.Expect(2, "verify", "--patch", _patch, "--trust", _temp["missing.pub"]);

        Assert.That(result.Err, Does.Contain("no such file"));
    }

    [Test]
    public void Verify_ThresholdAboveKeyCount_IsUsageError()
    {
        var result = CliRunner.Expect(2, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub, "--threshold", "2");

        Assert.That(result.Err, Does.Contain("can never be met"));
    }

    [Test]
    public void Verify_NoTrust_IsUsageError()
    {
        CliRunner.Expect(2, "verify", "--patch", _patch);
    }

    [Test]
    public void Verify_SignedManifestFromTheFuture_ExitsUnsupportedFormat()
    {
        PatchFiles.EditManifest(_patch, "\"format\": 1", "\"format\": 2");
        PatchFiles.ResignRaw(_patch, RepoPaths.TestKey);

        var result = CliRunner.Expect(3, "verify", "--patch", _patch, "--trust", RepoPaths.TestPub);

        Assert.That(result.Err, Does.StartWith("patchtool: error ManifestUnsupportedFormat (103)"));
    }

    private string BuildFormat2()
    {
        CliRunner.Expect(0, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch2"], "--product", SamplePatch.Product,
            "--version", SamplePatch.ToVersion, "--from-version", SamplePatch.FromVersion, "--key", RepoPaths.TestKey);
        return _temp["patch2"];
    }

    [Test]
    public void Verify_Format2Patch_PassesAndReportsThePayload()
    {
        var patch = BuildFormat2();

        var result = CliRunner.Expect(0, "verify", "--patch", patch, "--trust", RepoPaths.TestPub);

        Assert.That(result.Out, Does.Contain("payload     ok"));
    }

    [Test]
    public void Verify_Format2PayloadTruncated_BlobSizeMismatch()
    {
        var patch = BuildFormat2();
        var payload = Path.Join(patch, DeltaLimits.PayloadFileName);
        File.WriteAllBytes(payload, File.ReadAllBytes(payload)[..^1]);

        var result = CliRunner.Expect(3, "verify", "--patch", patch, "--trust", RepoPaths.TestPub);

        Assert.That(result.Err, Does.StartWith("patchtool: error BlobSizeMismatch (131)"));
    }
}
