using Patching.Building;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// Format 2 patches that list only what changes: where the base version's manifest comes from (the journal's record of
/// the installed version, else base.msgpack beside the patch, else a refusal), and that the composed manifest is what
/// the journal keeps, so the next patch finds its base there too.
/// </summary>
public sealed class ManifestChangesApplyTests
{
    private static string BaseFile(PatchScenario s, string? dir = null) => Path.Join(dir ?? s.PatchDir, VersionManifest.FileName);

    /// <summary>A game of many files of which one changes, one is added and one removed.</summary>
    private static PatchScenario ManyFiles(PatchScenario s, int files = 300)
    {
        for (var i = 0; i < files; i++)
        {
            PatchScenario.Write(s.OldTree, $"icons/icon-{i:D4}.svg", $"<svg>{i}</svg>");
            PatchScenario.Write(s.NewTree, $"icons/icon-{i:D4}.svg", i == 7 ? "<svg>seven, redrawn</svg>" : $"<svg>{i}</svg>");
        }

        PatchScenario.Write(s.OldTree, "icons/old.svg", "<svg>old</svg>");
        PatchScenario.Write(s.NewTree, "icons/new.svg", "<svg>new</svg>");
        return s;
    }

    [Test]
    public void Build_Format2Delta_ManifestListsOnlyTheChanges()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        var listed = PatchBuilder.Build(new BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.Dir("both-trees"), Product = "demo-game", Version = "2.0.0", FromVersion = "1.0.0",
            PrivateKeyPem = s.PrivateKey, ListUnchanged = true,
        });
        var changes = s.BuildPatch();

        var raw = MessagePackManifest.ReadRaw(File.ReadAllBytes(changes.ManifestPath), null);
        Assert.That(raw.Added!.Select(f => f.Path), Is.EqualTo(new[] { "icons/new.svg" }));
        Assert.That(raw.Changed!.Select(f => f.Path), Is.EqualTo(new[] { "icons/icon-0007.svg" }));
        Assert.That(raw.Removed, Is.EqualTo(new[] { "icons/old.svg" }));
        Assert.That(raw.BaseManifest, Is.EqualTo(ManifestCodec.Hash(File.ReadAllBytes(BaseFile(s)))));
        Assert.That(changes.ManifestBytes, Is.LessThan(listed.ManifestBytes / 20), $"{changes.ManifestBytes} bytes listing changes, {listed.ManifestBytes} listing both trees");
        Assert.That(changes.Manifest.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Executable)),
            Is.EqualTo(listed.Manifest.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Executable))), "the composed target is the one listed whole");
    }

    [Test]
    public void Build_WithoutBaseManifest_WritesNoBaseFile()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.PatchDir, Product = "demo-game", Version = "2.0.0", FromVersion = "1.0.0",
            PrivateKeyPem = s.PrivateKey, WriteBaseManifest = false,
        });

        Assert.That(File.Exists(BaseFile(s)), Is.False);
        Assert.That(MessagePackManifest.ReadRaw(File.ReadAllBytes(Path.Join(s.PatchDir, ManifestCodec.BinaryManifestFileName)), null).BaseManifest, Is.Not.Null);
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_ChangesOnlyOverJournalRecord_NeedsNoBaseManifestAndChainsToTheNextPatch(CommitStrategy strategy)
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).InstallThroughPatcher();
        var options = s.Options with { Strategy = strategy };
        s.BuildPatch();
        File.Delete(BaseFile(s));

        Assert.That(Patcher.Apply(s.InstallDir, s.PatchDir, options).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));

        // 2.0.0 -> 3.0.0: its base is the version the journal now records, composed from the previous patch's changes.
        var v3 = s.Dir("v3");
        PatchScenario.CopyTree(s.NewTree, v3);
        PatchScenario.Write(v3, "icons/icon-0100.svg", "<svg>one hundred, redrawn</svg>");
        var next = s.Dir("patch-3");
        s.BuildPatch(version: "3.0.0", fromVersion: "2.0.0", outDir: next, fromDir: s.NewTree, toDir: v3);
        File.Delete(BaseFile(s, next));

        Assert.That(Patcher.Apply(s.InstallDir, next, options).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(v3)));
        Assert.That(Patcher.Verify(s.InstallDir, options).IsIntact, Is.True, "the journal's composed record describes the installed files");
    }

    [Test]
    public void Apply_Format2ListingBothTrees_StillAppliesWithoutBaseManifest()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).Install();
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.PatchDir, Product = "demo-game", Version = "2.0.0", FromVersion = "1.0.0",
            PrivateKeyPem = s.PrivateKey, ListUnchanged = true,
        });

        Assert.That(File.Exists(BaseFile(s)), Is.False, "a manifest listing both trees needs no base manifest");
        Assert.That(Patcher.Apply(s.InstallDir, s.PatchDir, s.Options).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_ChangesOnlyOnUnmanagedInstallWithBaseManifestBeside_Applies()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).Install();
        s.BuildPatch();

        Assert.That(Patcher.Apply(s.InstallDir, s.PatchDir, s.Options).Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_ChangesOnlyWithoutJournalOrBaseManifest_BaseManifestMissingAndNothingChanged()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).Install();
        RefusedWithoutBaseFile(s, PatchErrorCode.BaseManifestMissing, "the journal records no installed version and the patch has no base.msgpack");
    }

    [Test]
    public void Apply_InstalledIsAnotherBuildOfTheBaseVersion_BaseManifestMismatchAndNothingChanged()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        // The journal records a 1.0.0 whose icon 3 differs from the 1.0.0 the patch was built from.
        var otherBuild = s.Dir("other-1.0.0");
        PatchScenario.CopyTree(s.OldTree, otherBuild);
        PatchScenario.Write(otherBuild, "icons/icon-0003.svg", "<svg>3, another build</svg>");
        s.BuildFull(otherBuild, s.Dir("full-other"), "1.0.0");
        Directory.CreateDirectory(s.InstallDir);
        Patcher.Apply(s.InstallDir, s.Dir("full-other"), s.Options);

        RefusedWithoutBaseFile(s, PatchErrorCode.BaseManifestMismatch, "another build");
    }

    [Test]
    public void ReadPatchInfo_ChangesOnlyWithoutBaseManifest_ReportsTheVerifiedSignatureAndTheListedChanges()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        s.BuildPatch();
        File.Delete(BaseFile(s));

        var info = Patcher.ReadPatchInfo(s.PatchDir, s.Options);

        Assert.That(info.SignatureVerified, Is.True);
        Assert.That(info.SigningKeyIds, Is.Not.Empty);
        Assert.That(info.BaseNeededToApply, Is.True);
        Assert.That((info.Product, info.FromVersion, info.Version), Is.EqualTo(("demo-game", "1.0.0", "2.0.0")));
        Assert.That(info.FilesAdded, Is.EqualTo(new[] { "icons/new.svg" }));
        Assert.That(info.FilesChanged, Is.EqualTo(new[] { "icons/icon-0007.svg" }));
        Assert.That(info.FilesRemoved, Is.EqualTo(new[] { "icons/old.svg" }));
        Assert.That(info.ManifestSha256, Is.EqualTo(ManifestCodec.Hash(File.ReadAllBytes(Path.Join(s.PatchDir, ManifestCodec.BinaryManifestFileName)))));
    }

    [Test]
    public void ReadPatchInfo_ChangesOnlyWithoutBaseManifestSignedByAnotherKey_SignatureInvalid()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        s.BuildPatch();
        File.Delete(BaseFile(s));
        var (_, otherKey) = Patching.Signing.SigningKeys.Generate();

        var ex = Assert.Throws<PatcherException>(() => Patcher.ReadPatchInfo(s.PatchDir, s.Options with { TrustedKeys = [otherKey] }));

        Assert.That(ex!.Code, Is.Not.EqualTo(PatchErrorCode.BaseManifestMissing), "the signature is checked before the base is needed");
    }

    [Test]
    public void ReadPatchInfo_ChangesOnlyWithBaseManifestBeside_BaseNotNeeded()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2));
        s.BuildPatch();

        var info = Patcher.ReadPatchInfo(s.PatchDir, s.Options);

        Assert.That(info.BaseNeededToApply, Is.False);
        Assert.That(info.FilesChanged, Is.EqualTo(new[] { "icons/icon-0007.svg" }));
    }

    /// <summary>
    /// An update to 1.1.0 killed after its exchange but before its patched row: the journal still says 1.0.0 is installed
    /// while the install holds 1.1.0. A patch listing only its changes from 1.1.0 (no base.msgpack) finds its base in the
    /// pending transaction; the apply recovers that transaction (forward) and then applies.
    /// </summary>
    [Test]
    [Category("Crash")]
    public void Apply_ChangesOnlyFromAVersionAPendingTransactionInstalls_BaseFoundAndAppliedAfterRecovery()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash host kills a swap apply, which needs Linux");
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).InstallThroughPatcher();
        s.BuildPatch("1.1.0", "1.0.0");
        var v12 = s.Dir("v1.2");
        PatchScenario.CopyTree(s.NewTree, v12);
        PatchScenario.Write(v12, "icons/icon-0042.svg", "<svg>forty-two, in 1.2.0</svg>");
        var p2 = Path.Join(s.Root, "patch-1.2.0");
        s.BuildPatch("1.2.0", "1.1.0", outDir: p2, fromDir: s.NewTree, toDir: v12);
        File.Delete(BaseFile(s, p2));
        var trust = Path.Join(s.Root, "trust.pub");
        File.WriteAllText(trust, s.PublicKey);

        // Where is the patched row? A dry run, then the same install of 1.0.0 through Patcher again.
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", s.InstallDir, s.PatchDir, trust, "swap"], crashLog: log);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var patched = Array.FindIndex(File.ReadAllLines(log), p => p.Contains(" journal patched ", StringComparison.Ordinal)) + 1;
        Assert.That(patched, Is.GreaterThan(0));
        Directory.Delete(s.ParentDir, recursive: true);
        Directory.CreateDirectory(s.InstallDir);
        Patcher.Apply(s.InstallDir, Path.Join(s.Root, "full-v1"), s.Options);
        var killed = CrashHost.Start(["apply", s.InstallDir, s.PatchDir, trust, "swap"], crashAt: patched);
        Assert.That(killed.Killed, Is.True, killed.StdErr);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)), "the exchange happened before the kill");

        var result = Patcher.Apply(s.InstallDir, p2, s.Options);

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That((result.FromVersion, result.ToVersion), Is.EqualTo(("1.1.0", "1.2.0")));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(v12)));
    }

    /// <summary>Builds the patch, removes base.msgpack beside it, and checks the apply is refused with nothing changed beside the install either.</summary>
    private static void RefusedWithoutBaseFile(PatchScenario s, PatchErrorCode code, string message)
    {
        s.BuildPatch();
        File.Delete(BaseFile(s));
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(code));
        Assert.That(ex.Message, Does.Contain(message));
        var after = PatchScenario.Listing(s.ParentDir);
        Assert.That(after, Is.EqualTo(before), $"added: {string.Join(", ", after.Except(before))}; gone: {string.Join(", ", before.Except(after))}");
    }

    [Test]
    public void Apply_ChangesOnlyForAnotherInstalledVersion_WrongBaseVersionAsPreflightSays()
    {
        using var s = ManyFiles(new PatchScenario().WithFormat(2)).InstallThroughPatcher();
        s.BuildPatch(version: "3.0.0", fromVersion: "2.0.0");
        File.Delete(BaseFile(s));

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.WrongBaseVersion));
    }
}
