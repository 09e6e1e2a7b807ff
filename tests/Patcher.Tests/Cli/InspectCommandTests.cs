using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

public sealed class InspectCommandTests
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
    public void Inspect_Json_DescribesTheSamplePatch()
    {
        var json = CliRunner.Expect(0, "inspect", "--patch", _patch, "--json").Json();
        var m = ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(_patch, ManifestCodec.ManifestFileName)));

        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("ok").GetBoolean(), Is.True);
            Assert.That(json.GetProperty("product").GetString(), Is.EqualTo("sample-game"));
            Assert.That(json.GetProperty("fromVersion").GetString(), Is.EqualTo("1.0.0"));
            Assert.That(json.GetProperty("version").GetString(), Is.EqualTo("1.1.0"));
            Assert.That(json.GetProperty("fullPackage").GetBoolean(), Is.False);
            Assert.That(json.GetProperty("expires").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
            var counts = json.GetProperty("counts");
            Assert.That(counts.GetProperty("added").GetInt32(), Is.EqualTo(2));
            Assert.That(counts.GetProperty("changed").GetInt32(), Is.EqualTo(3));
            Assert.That(counts.GetProperty("removed").GetInt32(), Is.EqualTo(2));
            Assert.That(counts.GetProperty("unchanged").GetInt32(), Is.EqualTo(2));
            Assert.That(json.GetProperty("files").GetProperty("removed").EnumerateArray().Select(e => e.GetString()),
                Is.EqualTo(new[] { "data/intro.txt", "data/music/theme.ogg" }));
            Assert.That(json.GetProperty("directories").GetProperty("added").EnumerateArray().Select(e => e.GetString()),
                Is.EqualTo(new[] { "data/audio", "mods" }));
            var bytes = json.GetProperty("bytes");
            Assert.That(bytes.GetProperty("download").GetInt64(), Is.EqualTo(m.Blobs.Sum(b => b.StoredSize)));
            Assert.That(bytes.GetProperty("target").GetInt64(), Is.EqualTo(m.Files.Sum(f => f.Size)));
            Assert.That(json.GetProperty("blobs").GetInt32(), Is.EqualTo(4));
            Assert.That(json.GetProperty("signatureKeyIds")[0].GetString(),
                Is.EqualTo(PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(RepoPaths.TestPub))));
            Assert.That(json.GetProperty("manifestSha256").GetString(),
                Is.EqualTo(ManifestCodec.Hash(File.ReadAllBytes(Path.Join(_patch, ManifestCodec.ManifestFileName)))));
        });
    }

    [Test]
    public void Inspect_Text_ShowsVersionsCountsAndChangedPaths()
    {
        var result = CliRunner.Expect(0, "inspect", "--patch", _patch);

        Assert.That(result.Out, Does.Contain("version      1.0.0 -> 1.1.0"));
        Assert.That(result.Out, Does.Contain("2 added, 3 changed, 2 removed, 2 unchanged"));
        Assert.That(result.Out, Does.Contain("  + data/levels/level3.dat"));
        Assert.That(result.Out, Does.Contain("  ~ launcher/launch.sh"));
        Assert.That(result.Out, Does.Contain("  - data/intro.txt"));
        Assert.That(result.Out, Does.Contain("  + mods/"));
        Assert.That(result.Out, Does.Contain("not verified"));
    }

    [Test]
    public void Inspect_UnsignedPatch_SaysUnsigned()
    {
        File.Delete(Path.Join(_patch, ManifestCodec.SignatureFileName));

        var result = CliRunner.Expect(0, "inspect", "--patch", _patch);

        Assert.That(result.Out, Does.Contain("signatures   none (unsigned)"));
    }

    [Test]
    public void Inspect_MissingPatch_ExitsRefusedPatchNotFound()
    {
        var result = CliRunner.Expect(3, "inspect", "--patch", _temp["nothing-here"], "--json");

        Assert.That(result.Err, Does.StartWith("patchtool: error PatchNotFound (100)"));
        var error = result.Json().GetProperty("error");
        Assert.That(error.GetProperty("code").GetInt32(), Is.EqualTo(100));
        Assert.That(error.GetProperty("name").GetString(), Is.EqualTo("PatchNotFound"));
    }

    [Test]
    public void Inspect_ManifestWithTraversalPath_IsRefusedUnsafePath()
    {
        var path = Path.Join(_patch, ManifestCodec.ManifestFileName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"path\": \"game.cfg\"", "\"path\": \"../../etc/game.cfg\"", StringComparison.Ordinal));

        var result = CliRunner.Expect(3, "inspect", "--patch", _patch);

        Assert.That(result.Err, Does.StartWith("patchtool: error UnsafePath (120)"));
    }

    [Test]
    public void Inspect_JsonOfFormat2_ListsEveryContentWithItsOperationsReadably()
    {
        CliRunner.Expect(0, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch2"], "--product", SamplePatch.Product,
            "--version", SamplePatch.ToVersion, "--from-version", SamplePatch.FromVersion);
        var json = CliRunner.Expect(0, "inspect", "--patch", _temp["patch2"], "--json").Json();
        var m = Patching.Sources.PatchPackage.Open(_temp["patch2"], ManifestLimits.Default).Manifest;

        var contents = json.GetProperty("contents").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("format").GetInt32(), Is.EqualTo(2));
            Assert.That(json.GetProperty("bytes").GetProperty("download").GetInt64(), Is.EqualTo(m.PayloadSize));
            Assert.That(contents.Select(c => c.GetProperty("sha256").GetString()), Is.EqualTo(m.Recipes.Select(r => r.Sha256)));
            var level2 = contents.Single(c => c.GetProperty("files")[0].GetString() == "data/levels/level2.dat");
            var op = level2.GetProperty("operations")[0];
            Assert.That(op.GetProperty("kind").GetString(), Is.EqualTo("data"));
            Assert.That(op.GetProperty("references")[0].GetProperty("base").GetString(), Is.EqualTo("data/levels/level2.dat"), "a changed file is a delta against its old self");
        });
    }

    [Test]
    public void Inspect_JsonOfChangesOnlyWithoutBaseManifest_ShowsTheChangesAndTheBaseHash()
    {
        CliRunner.Expect(0, "build", "--from", _temp["v1"], "--to", _temp["v2"], "--out", _temp["patch3"], "--product", SamplePatch.Product,
            "--version", SamplePatch.ToVersion, "--from-version", SamplePatch.FromVersion, "--no-base-manifest");
        var json = CliRunner.Expect(0, "inspect", "--patch", _temp["patch3"], "--json").Json();
        var raw = MessagePackManifest.ReadRaw(File.ReadAllBytes(Path.Join(_temp["patch3"], ManifestCodec.BinaryManifestFileName)), null);

        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("base").GetProperty("baseManifestSha256").GetString(), Is.EqualTo(raw.BaseManifest));
            Assert.That(json.GetProperty("base").GetProperty("baseKnown").GetBoolean(), Is.False);
            Assert.That(json.GetProperty("files").GetProperty("changed").EnumerateArray().Select(e => e.GetString()),
                Is.EqualTo(new[] { "data/levels/level2.dat", "launcher/launch.sh", "readme.txt" }));
            Assert.That(json.GetProperty("files").GetProperty("removed").EnumerateArray().Select(e => e.GetString()),
                Is.EqualTo(new[] { "data/intro.txt", "data/music/theme.ogg" }));
            var level2 = json.GetProperty("contents").EnumerateArray().Single(c => c.GetProperty("files")[0].GetString() == "data/levels/level2.dat");
            Assert.That(level2.GetProperty("operations")[0].GetProperty("references")[0].GetProperty("base").GetString(), Does.StartWith("#"),
                "without the base, base files are shown by index");
        });
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Inspect_JsonOfContentWindows_ShowsTheContentIndexAndHashOfEachWindow(bool baseManifestBeside)
    {
        using var s = new PatchScenario().WithFormat(2);
        ContentWindowPatch.AddBuilds(s);
        s.BuildPatch();
        var m = ContentWindowPatch.Rewrite(s);
        if (!baseManifestBeside) File.Delete(Path.Join(s.PatchDir, VersionManifest.FileName));

        var json = CliRunner.Expect(0, "inspect", "--patch", s.PatchDir, "--json").Json();

        var b = ContentWindowPatch.Sha(File.ReadAllBytes(Path.Join(s.NewTree, ContentWindowPatch.B)));
        var c = ContentWindowPatch.Sha(File.ReadAllBytes(Path.Join(s.NewTree, ContentWindowPatch.C)));
        var contents = json.GetProperty("contents").EnumerateArray().ToList();
        var window = contents.Single(x => x.GetProperty("sha256").GetString() == c).GetProperty("operations")[1].GetProperty("references")[0];
        Assert.Multiple(() =>
        {
            Assert.That(window.GetProperty("base").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null), "a content window names no base file");
            Assert.That(window.GetProperty("content").GetString(), Is.EqualTo(b));
            Assert.That(window.GetProperty("contentIndex").GetInt32(), Is.EqualTo(m.Recipes.ToList().FindIndex(r => r.Sha256 == b)));
            Assert.That(window.GetProperty("offset").GetInt64(), Is.EqualTo(0));
            Assert.That(window.GetProperty("length").GetInt64(), Is.EqualTo(new FileInfo(Path.Join(s.NewTree, ContentWindowPatch.B)).Length));
            Assert.That(window.GetProperty("sha256").GetString(), Is.EqualTo(b), "a whole content's window has its hash");
        });
    }
}
