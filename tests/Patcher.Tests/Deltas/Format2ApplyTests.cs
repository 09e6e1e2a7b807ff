using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>Format 2 end to end: built by <see cref="Building.PatchBuilder"/>, applied by <see cref="Patcher.Apply"/>, for both commit strategies.</summary>
public sealed class Format2ApplyTests
{
    private static readonly string[] UserFiles = ["saves/slot1.sav", "data/mods/my-mod.txt", "settings.cfg"];

    private static PatcherOptions Options(PatchScenario s, CommitStrategy strategy) => s.Options with { Strategy = strategy };

    /// <summary>Incompressible bytes, so a test measuring patch size measures reuse and deltas, not compression.</summary>
    internal static byte[] Noise(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>
    /// A game whose new version edits a large file in three places, renames a file, splits one file into two, merges
    /// two into one, moves content into a new file at another path, adds, removes and keeps files.
    /// </summary>
    internal static PatchScenario MovingGame(PatchScenario s)
    {
        var big = Noise(1, 4 << 20);
        PatchScenario.Write(s.OldTree, "data/big.pak", big);
        var edited = (byte[])big.Clone();
        foreach (var at in new[] { 100_000, 2_000_000, 3_900_000 }) edited[at] ^= 0xFF;
        PatchScenario.Write(s.NewTree, "data/big.pak", edited);

        var a = Noise(2, 600_000);
        var b = Noise(3, 500_000);
        var c = Noise(4, 700_000);
        PatchScenario.Write(s.OldTree, "data/old-name.bin", a);
        PatchScenario.Write(s.NewTree, "data/new-name.bin", a); // renamed
        PatchScenario.Write(s.OldTree, "data/whole.bin", [.. b, .. c]);
        PatchScenario.Write(s.NewTree, "data/part-b.bin", b); // split
        PatchScenario.Write(s.NewTree, "data/part-c.bin", c);
        var d = Noise(5, 300_000);
        var e = Noise(6, 400_000);
        PatchScenario.Write(s.OldTree, "data/d.bin", d);
        PatchScenario.Write(s.OldTree, "data/e.bin", e);
        PatchScenario.Write(s.NewTree, "data/merged.bin", [.. e, .. d]); // merged, reordered
        PatchScenario.Write(s.OldTree, "game.exe", Noise(7, 200_000), executable: true);
        PatchScenario.Write(s.NewTree, "game.exe", [.. Noise(7, 200_000).AsSpan(0, 150_000), .. "patched"u8, .. Noise(7, 200_000).AsSpan(150_000)], executable: true);
        PatchScenario.Write(s.NewTree, "added.txt", "brand new content, shipped whole");
        PatchScenario.Write(s.OldTree, "removed.txt", "gone in v2");
        PatchScenario.Write(s.OldTree, "same.txt", "kept as is");
        PatchScenario.Write(s.NewTree, "same.txt", "kept as is");
        PatchScenario.Write(s.NewTree, "empty.txt", "");
        Directory.CreateDirectory(Path.Join(s.NewTree, "cache/empty"));
        return s;
    }

    /// <summary>
    /// Adds to a scenario content that format 2 rebuilds with every kind of operation: a 600 KB file edited in two
    /// places (copies and deltas against the same path) and one split into two (copies from another path).
    /// </summary>
    internal static PatchScenario AddDeltaContent(PatchScenario s)
    {
        var big = Noise(21, 600_000);
        PatchScenario.Write(s.OldTree, "data/big.pak", big);
        var edited = (byte[])big.Clone();
        edited[50_000] ^= 1;
        edited[400_000] ^= 1;
        PatchScenario.Write(s.NewTree, "data/big.pak", edited);
        var joined = Noise(22, 300_000);
        PatchScenario.Write(s.OldTree, "data/joined.bin", joined);
        PatchScenario.Write(s.NewTree, "data/first.bin", joined.AsSpan(0, 120_000).ToArray());
        PatchScenario.Write(s.NewTree, "data/second.bin", joined.AsSpan(120_000).ToArray());
        return s;
    }

    private static void AddUserFiles(string installDir)
    {
        foreach (var f in UserFiles) PatchScenario.Write(installDir, f, "user content of " + f);
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_Format2WithMovedSplitMergedAndEditedContent_TreeEqualsNewVersionAndUserFilesKept(CommitStrategy strategy)
    {
        using var s = MovingGame(new PatchScenario().WithFormat(2)).Install();
        var built = s.BuildPatch();
        AddUserFiles(s.InstallDir);

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, Options(s, strategy));

        Assert.That(File.Exists(Path.Join(s.PatchDir, ManifestCodec.BinaryManifestFileName)), Is.True, "a format 2 patch has a MessagePack manifest");
        Assert.That(built.Manifest.Format, Is.EqualTo(2));
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir, rel => UserFiles.Contains(rel) || rel is "saves" or "data/mods"), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        foreach (var f in UserFiles) Assert.That(File.ReadAllText(Path.Join(s.InstallDir, f)), Is.EqualTo("user content of " + f), f);
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_Format2BaseRegionCopiedFromIsDamaged_BaseMismatchNamingTheFileAndNothingChanged(CommitStrategy strategy)
    {
        using var s = MovingGame(new PatchScenario().WithFormat(2)).Install();
        s.BuildPatch();
        AddUserFiles(s.InstallDir);
        // Same size, one byte changed in the middle of the file the split files are copied from: only a hash finds it.
        var damaged = Path.Join(s.InstallDir, "data/whole.bin");
        var bytes = File.ReadAllBytes(damaged);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(damaged, bytes);
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, Options(s, strategy)));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
        Assert.That(ex.Message, Does.Contain("'data/whole.bin'"));
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before), "the install and everything beside it are unchanged");
    }

    [Test]
    public void VerifyAllBlobs_Format2Patch_DecodesEachFrameWithoutAReferenceOnce()
    {
        using var s = MovingGame(new PatchScenario().WithFormat(2)).Install();
        var built = s.BuildPatch();
        var package = Sources.PatchPackage.Open(s.PatchDir, ManifestLimits.Default);
        var frames = built.Manifest.Recipes.SelectMany(r => r.Ops).Count(o => o.Kind == DeltaOpKind.Data);

        package.VerifyAllBlobs(CancellationToken.None);

        var standalone = built.Manifest.Recipes.SelectMany(r => r.Ops).Count(o => o.Kind == DeltaOpKind.Data && o.Refs.Count == 0);
        Assert.That(package.BlobReads, Is.EqualTo(standalone), "verify decodes each frame without a reference once");
        Assert.That(frames, Is.GreaterThan(standalone), "the patch has deltas against the base too");
    }

    [Test]
    public void Build_Format2MovedAndEditedContent_ShipsOnlyWhatChanged()
    {
        using var s = MovingGame(new PatchScenario().WithFormat(2));

        var built = s.BuildPatch();

        // 4 MiB + 1.8 MB moved + 1.3 MB split/merged of incompressible bytes: only the edits and the new text travel.
        TestContext.Out.WriteLine($"payload {built.BlobBytes} bytes, manifest {built.ManifestBytes} bytes, stats {built.Deltas}");
        Assert.That(built.BlobBytes, Is.LessThan(8 * 1024), "payload of a few KB");
        Assert.That(built.Deltas!.ReusedBytes, Is.GreaterThan(6_000_000), "moved, split and merged content is copied from the base");
    }

    [Test]
    public void Build_Format2FileEditedInThreePlaces_PayloadIsAFewKilobytes()
    {
        using var s = new PatchScenario().WithFormat(2);
        var big = Noise(11, 4 << 20);
        PatchScenario.Write(s.OldTree, "big.pak", big);
        foreach (var at in new[] { 10_000, 1_500_000, 4_000_000 }) big[at] ^= 0x5A;
        PatchScenario.Write(s.NewTree, "big.pak", big);

        var built = s.BuildPatch();

        TestContext.Out.WriteLine($"payload {built.BlobBytes} bytes, manifest {built.ManifestBytes} bytes");
        Assert.That(built.BlobBytes, Is.LessThan(2 * 1024), "three one-byte edits in 4 MiB cost bytes, not chunks");
        Assert.That(built.BlobBytes + built.ManifestBytes, Is.LessThan(4 * 1024));
    }
}
