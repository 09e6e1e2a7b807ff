using Patching.Building;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Building;

/// <summary>Reference windows into contents the patch rebuilds earlier: several builds of one bundle ship a common edit once.</summary>
public sealed class ContentWindowTests
{
    private TempDir _temp = null!;

    [SetUp]
    public void SetUp() => _temp = TempDir.ForCurrentTest();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public void Build_BuildsChangedAlike_TheEditShipsOnce()
    {
        var (from, to) = Folders();
        var rng = new Random(21);
        var core = Bytes(rng, 600 * 1024);
        var edited = (byte[])core.Clone();
        for (var e = 0; e < 6; e++) rng.NextBytes(edited.AsSpan(40_000 + (e * 95_000), 3_000));
        for (var k = 0; k < 4; k++)
        {
            var (header, footer) = (Bytes(rng, 4096), Bytes(rng, 2048));
            File.WriteAllBytes(Path.Join(from, "build", $"b{k}.js"), [.. header, .. core, .. footer]);
            File.WriteAllBytes(Path.Join(to, "build", $"b{k}.js"), [.. header, .. edited, .. footer]);
        }

        var with = BuildAll(from, to, contentWindows: true);
        var without = BuildAll(from, to, contentWindows: false);

        var first = with.Recipes[0].Sha256;
        Assert.Multiple(() =>
        {
            Assert.That(with.Recipes[0].Ops.SelectMany(o => o.Refs).Any(r => r.Content is not null), Is.False, "the first build has nothing earlier");
            foreach (var later in with.Recipes.Skip(1))
                Assert.That(later.Ops.SelectMany(o => o.Refs).Any(r => r.Content == first), Is.True, "each later build references the first");
            // Six edits of 3,000 random bytes: about 18 KB once instead of four times.
            Assert.That(without.Payload.Length, Is.GreaterThan(4 * 18_000));
            Assert.That(with.Payload.Length, Is.LessThan(without.Payload.Length * 4 / 10), $"{with.Payload.Length} vs {without.Payload.Length} bytes");
            Assert.That(with.Stats.EarlierContentBytes, Is.GreaterThan(0).And.LessThanOrEqualTo(with.Stats.DeltaBytes));
            Assert.That(without.Stats.EarlierContentBytes, Is.Zero);
        });
        AssertRebuildsTarget(from, to, with);
    }

    [Test]
    public void Build_NearIdenticalAddedFiles_LaterOnesReferenceTheFirst()
    {
        var (from, to) = Folders();
        WriteVariants(to, new Random(22), count: 4, size: 300 * 1024, spacing: 70_000, edit: 64);

        var with = BuildAll(from, to, contentWindows: true);
        var without = BuildAll(from, to, contentWindows: false);

        Assert.Multiple(() =>
        {
            Assert.That(without.Payload.Length, Is.GreaterThan(4 * 300 * 1024), "random bytes: each file whole");
            Assert.That(with.Payload.Length, Is.LessThan(without.Payload.Length * 3 / 10), $"{with.Payload.Length} vs {without.Payload.Length} bytes");
            foreach (var later in with.Recipes.Skip(1))
                Assert.That(later.Ops.SelectMany(o => o.Refs).Select(r => r.Content), Has.Some.EqualTo(with.Recipes[0].Sha256));
        });
        AssertRebuildsTarget(from, to, with);
    }

    [Test]
    public void Build_AddedFileLikeNothing_ReferencesTheEarlierContentOfTheSameName()
    {
        var (from, to) = Folders();
        var rng = new Random(23);
        File.WriteAllBytes(Path.Join(to, "build", "a", "data.bin"), Bytes(rng, 40_000));
        File.WriteAllBytes(Path.Join(to, "build", "b", "data.bin"), Bytes(rng, 40_000));
        File.WriteAllBytes(Path.Join(to, "build", "b", "other.txt"), Bytes(rng, 40_000));

        var built = BuildAll(from, to, contentWindows: true);

        var first = built.Recipes[0];
        var second = built.Recipes.Single(r => r.Sha256 == Sha(to, "build/b/data.bin"));
        Assert.Multiple(() =>
        {
            Assert.That(first.Sha256, Is.EqualTo(Sha(to, "build/a/data.bin")));
            Assert.That(second.Ops.Single().Refs.Select(r => r.Content), Is.EqualTo(new[] { first.Sha256 }), "nothing matches: the same name's earlier content");
        });
        AssertRebuildsTarget(from, to, built);
    }

    [Test]
    public void Build_RecipesBuiltInAnyOrder_SamePayload()
    {
        var (from, to) = Folders();
        WriteVariants(to, new Random(24), count: 6, size: 200 * 1024, spacing: 30_000, edit: 200);

        var inOrder = BuildAll(from, to, contentWindows: true);
        var reversed = BuildAll(from, to, contentWindows: true, reverse: true);

        Assert.That(reversed.Payload, Is.EqualTo(inOrder.Payload), "recipe i reads only the bytes of contents before it, never their recipes");
        Assert.That(reversed.Recipes.SelectMany(r => r.Ops).SelectMany(o => o.Refs), Is.EqualTo(inOrder.Recipes.SelectMany(r => r.Ops).SelectMany(o => o.Refs)));
        Assert.That(inOrder.Stats.EarlierContentBytes, Is.GreaterThan(0), "the case has windows into earlier contents");
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_BuiltPatchOfBuildsChangedAlike_TreeEqualsNewVersion(CommitStrategy strategy)
    {
        using var s = new PatchScenario().WithFormat(2);
        var core = PatchScenario.Bytes("core", 300_000);
        var edited = (byte[])core.Clone();
        for (var e = 0; e < 4; e++) PatchScenario.Bytes("edit" + e, 2_000).CopyTo(edited, 30_000 + (e * 70_000));
        for (var k = 0; k < 3; k++)
        {
            var header = PatchScenario.Bytes("header" + k, 3_000);
            PatchScenario.Write(s.OldTree, $"build/b{k}.js", [.. header, .. core]);
            PatchScenario.Write(s.NewTree, $"build/b{k}.js", [.. header, .. edited]);
        }

        PatchScenario.Write(s.NewTree, "build/added.js", [.. PatchScenario.Bytes("header9", 3_000), .. edited]);
        s.Install();
        PatchScenario.Write(s.InstallDir, "saves/slot1.sav", "user save");
        var built = s.BuildPatch();

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });

        Assert.Multiple(() =>
        {
            Assert.That(built.Deltas!.EarlierContentBytes, Is.GreaterThan(0), "the patch has windows into earlier contents");
            Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
            Assert.That(PatchScenario.Listing(s.InstallDir, rel => rel is "saves" or "saves/slot1.sav"), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
            Assert.That(File.ReadAllText(Path.Join(s.InstallDir, "saves/slot1.sav")), Is.EqualTo("user save"));
        });
    }

    private (string From, string To) Folders()
    {
        var from = _temp["from"];
        var to = _temp["to"];
        Directory.CreateDirectory(Path.Join(from, "build"));
        foreach (var dir in new[] { "build", "build/a", "build/b" }) Directory.CreateDirectory(Path.Join(to, dir));
        return (from, to);
    }

    /// <summary>Writes <paramref name="count"/> variants of one random bundle under build/, variant k with <paramref name="edit"/> random bytes at k × <paramref name="spacing"/> + 1000.</summary>
    private static void WriteVariants(string to, Random rng, int count, int size, int spacing, int edit)
    {
        var bundle = Bytes(rng, size);
        for (var k = 0; k < count; k++)
        {
            var variant = (byte[])bundle.Clone();
            rng.NextBytes(variant.AsSpan(1000 + (k * spacing), edit));
            File.WriteAllBytes(Path.Join(to, "build", $"bundle{k}.js"), variant);
        }
    }

    private static byte[] Bytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    private static string Sha(string dir, string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Join(dir, path))));

    /// <summary>
    /// What the format 2 build does with the contents to rebuild, in process: each built (here one after the other, in
    /// recipe order or reversed), then appended to the payload in recipe order.
    /// </summary>
    private static (List<ContentRecipe> Recipes, byte[] Payload, DeltaStats Stats) BuildAll(string from, string to, bool contentWindows, bool reverse = false)
    {
        var baseTree = TreeScanner.Scan(from);
        var target = TreeScanner.Scan(to);
        var inBase = baseTree.Files.Select(f => f.Sha256).ToHashSet();
        var needed = target.Files.Where(f => f.Size > 0 && !inBase.Contains(f.Sha256)).DistinctBy(f => f.Sha256).ToList();
        var builder = new DeltaBuilder(from, baseTree, level: 9, large: false);
        if (baseTree.Files.Count > 0) builder.IndexBase(CancellationToken.None);
        if (contentWindows) builder.IndexContents(to, needed, CancellationToken.None);
        var built = new (ContentRecipe Recipe, MemoryStream Frames)[needed.Count];
        var order = Enumerable.Range(0, needed.Count);
        foreach (var i in reverse ? order.Reverse() : order)
        {
            var frames = new MemoryStream();
            built[i] = (builder.Build(needed[i], Path.Join(to, needed[i].Path), frames, CancellationToken.None), frames);
        }

        var payload = new MemoryStream();
        var recipes = built.Select(b => builder.Append(b.Recipe, b.Frames, payload)).ToList();
        return (recipes, payload.ToArray(), builder.Stats);
    }

    private static void AssertRebuildsTarget(string from, string to, (List<ContentRecipe> Recipes, byte[] Payload, DeltaStats Stats) built)
    {
        var rebuilt = RecipeRebuilder.Rebuild(from, built.Recipes, built.Payload);
        foreach (var file in TreeScanner.Scan(to).Files)
            Assert.That(rebuilt[file.Sha256], Is.EqualTo(File.ReadAllBytes(Path.Join(to, file.Path))), file.Path);
    }
}
