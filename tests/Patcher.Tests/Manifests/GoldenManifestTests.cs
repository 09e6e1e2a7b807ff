using System.Text;
using Patching.Building;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Tests.TestHelpers;
using PatchTool.Infrastructure;

namespace Patching.Tests.Manifests;

/// <summary>
/// fixtures/golden pins manifest format v1 byte for byte. A change that alters these bytes changes the signed
/// format: it needs a format decision (docs/format.md), not just a refreshed golden file.
/// Refresh deliberately with <c>PATCHER_UPDATE_GOLDEN=1 dotnet test</c>, then review the diff by hand.
/// </summary>
public sealed class GoldenManifestTests
{
    /// <param name="ChangesOnly">Format 2 delta listing only changes, with the base version's manifest (base.msgpack) pinned beside it.</param>
    public sealed record GoldenCase(string Name, bool Delta, DateTimeOffset? Expires, int Format = 1, bool ChangesOnly = false)
    {
        public string ManifestFile => ManifestCodec.FileNameFor(Format);

        public override string ToString() => Name;
    }

    public static readonly GoldenCase[] Cases =
    [
        new("sample-1.0.0-to-1.1.0", Delta: true, Expires: null),
        new("sample-full-1.0.0", Delta: false, Expires: new DateTimeOffset(2035, 1, 1, 0, 0, 0, TimeSpan.Zero)),
        new("format2-sample-1.0.0-to-1.1.0", Delta: true, Expires: null, Format: 2),
        new("format2-sample-full-1.0.0", Delta: false, Expires: new DateTimeOffset(2035, 1, 1, 0, 0, 0, TimeSpan.Zero), Format: 2),
        new("format2-changes-sample-1.0.0-to-1.1.0", Delta: true, Expires: null, Format: 2, ChangesOnly: true),
    ];

    private static bool Updating => Environment.GetEnvironmentVariable("PATCHER_UPDATE_GOLDEN") == "1";

    private static string GoldenPath(GoldenCase c, string file) => Path.Join(RepoPaths.Golden, c.Name, file);

    [TestCaseSource(nameof(Cases))]
    public void Build_SampleTreesWithFixedClock_MatchesGoldenBytes(GoldenCase c)
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("the golden manifests record a Unix executable bit, which Windows trees do not carry");
        using var temp = TempDir.ForCurrentTest();
        var built = BuildGolden(c, temp);
        var path = GoldenPath(c, c.ManifestFile);
        var payload = Path.Join(temp["out"], Patching.Manifests.DeltaLimits.PayloadFileName);
        if (Updating)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, built);
            if (c.Format == 2) File.Copy(payload, GoldenPath(c, Patching.Manifests.DeltaLimits.PayloadFileName), overwrite: true);
            if (c.ChangesOnly) File.Copy(Path.Join(temp["out"], VersionManifest.FileName), GoldenPath(c, VersionManifest.FileName), overwrite: true);
            PatchBuilder.Sign(Path.GetDirectoryName(path)!, File.ReadAllText(RepoPaths.TestKey));
        }

        // Format 2's zstd frames are pinned too: the managed port has no native library whose version could drift.
        if (c.Format == 2)
            Assert.That(File.ReadAllBytes(payload), Is.EqualTo(File.ReadAllBytes(GoldenPath(c, Patching.Manifests.DeltaLimits.PayloadFileName))), "payload differs from the golden bytes");
        if (c.ChangesOnly)
            Assert.That(File.ReadAllBytes(Path.Join(temp["out"], VersionManifest.FileName)), Is.EqualTo(File.ReadAllBytes(GoldenPath(c, VersionManifest.FileName))), "base manifest differs from the golden bytes");
        var golden = File.ReadAllBytes(path);
        Assert.That(Encoding.UTF8.GetString(built), Is.EqualTo(Encoding.UTF8.GetString(golden)), "built manifest differs from the golden text");
        Assert.That(built, Is.EqualTo(golden), "built manifest differs from the golden bytes");
    }

    [TestCaseSource(nameof(Cases))]
    public void Deserialize_GoldenManifest_ReserializesByteIdentically(GoldenCase c)
    {
        var golden = File.ReadAllBytes(GoldenPath(c, c.ManifestFile));

        var reserialized = ManifestCodec.Serialize(Read(c));

        Assert.That(reserialized, Is.EqualTo(golden));
    }

    [TestCaseSource(nameof(Cases))]
    public void Validate_GoldenManifest_Passes(GoldenCase c)
    {
        var manifest = Read(c);

        Assert.DoesNotThrow(() => ManifestValidator.Validate(manifest, ManifestLimits.Default));
        Assert.That(manifest.IsFullPackage, Is.EqualTo(!c.Delta));
    }

    [TestCaseSource(nameof(Cases))]
    public void VerifySignature_GoldenWithTestKey_Succeeds(GoldenCase c)
    {
        var (bytes, envelope) = ReadGolden(c);
        using var policy = TrustPolicy.FromPems([File.ReadAllText(RepoPaths.TestPub)], 1);

        var keys = policy.Verify(bytes, envelope, null);

        Assert.That(keys, Is.EqualTo(new[] { KeygenKeyId(RepoPaths.TestPub) }));
    }

    [TestCaseSource(nameof(Cases))]
    public void VerifySignature_GoldenWithSecondTestKey_FailsSignatureInvalid(GoldenCase c)
    {
        var (bytes, envelope) = ReadGolden(c);
        using var policy = TrustPolicy.FromPems([File.ReadAllText(RepoPaths.TestPub2)], 1);

        var ex = Assert.Throws<PatcherException>(() => policy.Verify(bytes, envelope, null));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public void DeltaGolden_Contents_DescribeTheSampleChanges()
    {
        var m = ManifestCodec.Deserialize(File.ReadAllBytes(GoldenPath(Cases[0], ManifestCodec.ManifestFileName)));
        var summary = PatchSummary.Of(m);

        Assert.Multiple(() =>
        {
            Assert.That(m.Product, Is.EqualTo("sample-game"));
            Assert.That((m.FromVersion, m.Version), Is.EqualTo(("1.0.0", "1.1.0")));
            Assert.That(m.Created, Is.EqualTo(FixedTimeProvider.GoldenTime));
            Assert.That(summary.Added, Is.EqualTo(new[] { "data/audio/theme.ogg", "data/levels/level3.dat" }));
            Assert.That(summary.Changed, Is.EqualTo(new[] { "data/levels/level2.dat", "launcher/launch.sh", "readme.txt" }));
            Assert.That(summary.Removed, Is.EqualTo(new[] { "data/intro.txt", "data/music/theme.ogg" }));
            Assert.That(summary.Unchanged, Is.EqualTo(new[] { "data/levels/level1.dat", "game.cfg" }));
            Assert.That(summary.DirectoriesAdded, Is.EqualTo(new[] { "data/audio", "mods" }));
            Assert.That(summary.DirectoriesRemoved, Is.EqualTo(new[] { "data/music" }));
            Assert.That(m.Files.Single(f => f.Path == "launcher/launch.sh").Executable, Is.True);
            // The renamed theme.ogg is in the base already: no blob ships for it.
            Assert.That(m.Blobs.Select(b => b.Sha256), Does.Not.Contain(m.Files.Single(f => f.Path == "data/audio/theme.ogg").Sha256));
            Assert.That(m.Blobs, Has.Count.EqualTo(4));
        });
    }

    [Test]
    public void FormatDoc_FullExample_IsTheDeltaGoldenManifest()
    {
        var doc = File.ReadAllText(Path.Join(RepoPaths.Docs, "format.md")).ReplaceLineEndings("\n");
        var golden = File.ReadAllText(GoldenPath(Cases[0], ManifestCodec.ManifestFileName));

        Assert.That(doc, Does.Contain("```json\n" + golden + "```"), "docs/format.md must quote fixtures/golden/sample-1.0.0-to-1.1.0/manifest.json verbatim");
    }

    /// <summary>The golden manifest parsed; one listing only changes is composed over its pinned base manifest.</summary>
    private static Manifest Read(GoldenCase c)
    {
        var bytes = File.ReadAllBytes(GoldenPath(c, c.ManifestFile));
        return c.ChangesOnly
            ? MessagePackManifest.Deserialize(bytes, null, VersionManifest.Deserialize(File.ReadAllBytes(GoldenPath(c, VersionManifest.FileName)), null))
            : ManifestCodec.Deserialize(bytes);
    }

    private static byte[] BuildGolden(GoldenCase c, TempDir temp)
    {
        SampleData.CopyVersion(RepoPaths.Sample, "v1", temp["v1"]);
        SampleData.CopyVersion(RepoPaths.Sample, "v2", temp["v2"]);
        var result = PatchBuilder.Build(new BuildRequest
        {
            FromDir = c.Delta ? temp["v1"] : null,
            ToDir = c.Delta ? temp["v2"] : temp["v1"],
            OutDir = temp["out"],
            Product = "sample-game",
            Version = c.Delta ? "1.1.0" : "1.0.0",
            FromVersion = c.Delta ? "1.0.0" : null,
            Expires = c.Expires,
            // Brotli's output may change with the runtime's native library; stored sizes would then drift.
            Compress = false,
            Time = FixedTimeProvider.Golden,
            Format = c.Format,
            ListUnchanged = !c.ChangesOnly,
        });
        return File.ReadAllBytes(result.ManifestPath);
    }

    private static (byte[] Bytes, SignatureEnvelope Envelope) ReadGolden(GoldenCase c)
    {
        var bytes = File.ReadAllBytes(GoldenPath(c, c.ManifestFile));
        var envelope = ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(GoldenPath(c, ManifestCodec.SignatureFileName)));
        return (bytes, envelope);
    }

    private static string KeygenKeyId(string pubPath) => PatchTool.Commands.KeygenCommand.KeyIdOf(File.ReadAllText(pubPath));
}
