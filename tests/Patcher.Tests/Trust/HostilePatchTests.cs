using Patching.Tests.TestHelpers;
using PatchTool.Infrastructure;

namespace Patching.Tests.Trust;

/// <summary>
/// Runs every patch in fixtures/hostile against a real install and checks it is refused with its specific
/// code, and that the install and everything beside it (the whole test root) is byte-identical afterwards.
/// </summary>
public sealed class HostilePatchTests
{
    private static string HostileRoot => Path.Join(RepoPaths.Fixtures, "hostile");

    private static IEnumerable<string> CaseNames() =>
        HostileCorpus.Cases.Concat(HostileCorpusFormat2.Cases).Select(c => c.Name);

    [Test]
    [Explicit("Rewrites fixtures/hostile from the case table; run by hand after changing a case")]
    public void HostileCorpus_Regenerate() => HostileCorpus.Generate(HostileRoot);

    [Test]
    public void HostileFixtures_MatchTheCaseTable()
    {
        var onDisk = Directory.GetDirectories(HostileRoot).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.That(onDisk, Is.EqualTo(CaseNames().Order(StringComparer.Ordinal).ToList()));
        foreach (var dir in Directory.GetDirectories(HostileRoot))
            Assert.That(File.ReadAllText(Path.Join(dir, "README")).Trim(), Is.Not.Empty, dir);
    }

    [TestCaseSource(nameof(CaseNames))]
    public void Apply_HostilePatch_RefusedWithSpecificCodeAndNothingChanged(string name)
    {
        var dir = Path.Join(HostileRoot, name);
        var expect = File.ReadAllLines(Path.Join(dir, "expect")).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        using var temp = TempDir.ForCurrentTest();
        var install = Path.Join(temp.Dir("parent"), "game");
        SampleData.CopyVersion(RepoPaths.Sample, "v1", install);
        TreeFactory.WriteFile(install, "saves/slot1.sav", "precious"u8.ToArray());
        // Cleanup inline: the listing below must not race the background deletion of the setup apply's old tree.
        var options = new PatcherOptions { TrustedKeys = [File.ReadAllText(RepoPaths.TestPub)], CleanupInBackground = false };
        if (expect["setup"] == nameof(HostileCorpus.Setup.Installed))
        {
            // Let the journal know 1.0.0 is installed: a full package of v1 applied through Patcher.
            var full = temp["full-v1"];
            SampleData.CopyVersion(RepoPaths.Sample, "v1", temp["v1src"]);
            Patching.Building.PatchBuilder.Build(new Patching.Building.BuildRequest
            {
                ToDir = temp["v1src"],
                OutDir = full,
                Product = SamplePatch.Product,
                Version = SamplePatch.FromVersion,
                PrivateKeyPem = File.ReadAllText(RepoPaths.TestKey),
            });
            Patcher.Apply(install, full, options);
        }

        // Work on a copy of the fixture so nothing can alter the corpus itself.
        var patch = temp["patch"];
        PatchScenario.CopyTree(dir, patch);
        var before = PatchScenario.Listing(temp.Path, rel => rel.StartsWith("patch", StringComparison.Ordinal));

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(install, patch, options));

        Assert.That(ex!.Code.ToString(), Is.EqualTo(expect["code"]), ex.Message);
        Assert.That(ex.Message, Does.Contain(expect["message"]));
        Assert.That(PatchScenario.Listing(temp.Path, rel => rel.StartsWith("patch", StringComparison.Ordinal)), Is.EqualTo(before),
            "the install and everything beside it must be byte-identical after a refused patch");
        Assert.That(File.Exists(Path.Join(temp.Path, "escaped.txt")) || File.Exists(Path.Join(Path.GetDirectoryName(temp.Path)!, "escaped.txt")), Is.False);
    }
}
