using Patching.Deltas;
using Patching.Manifests;
using Patching.Staging;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// Format 2 deltas against contents the same patch rebuilds earlier (<see cref="ContentWindowPatch"/>: C reads B, B
/// reads A), applied end to end: exact new tree for both strategies, in parallel and one task at a time, and a failure
/// of a referenced content failing the apply with that content's error rather than leaving its readers waiting.
/// </summary>
public sealed class ContentWindowApplyTests
{
    private static readonly string[] UserFiles = ["saves/slot1.sav", "settings.cfg"];

    /// <summary>Guards the tests that must not hang; an apply of this size takes well under a second.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(2);

    private static PatchScenario ChainGame(out Manifest manifest, Action<Trust.HostileCorpusFormat2.Workbench>? more = null)
    {
        var s = new PatchScenario().WithFormat(2);
        PatchScenario.Write(s.OldTree, "readme.txt", "version 1");
        PatchScenario.Write(s.NewTree, "readme.txt", "version 2");
        ContentWindowPatch.AddBuilds(s);
        s.Install();
        s.BuildPatch();
        manifest = ContentWindowPatch.Rewrite(s, more);
        foreach (var f in UserFiles) PatchScenario.Write(s.InstallDir, f, "user content of " + f);
        return s;
    }

    private static List<string> Installed(PatchScenario s) => PatchScenario.Listing(s.InstallDir, rel => UserFiles.Contains(rel) || rel is "saves");

    private static void AssertNewVersionAndUserFiles(PatchScenario s)
    {
        Assert.That(Installed(s), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        foreach (var f in UserFiles) Assert.That(File.ReadAllText(Path.Join(s.InstallDir, f)), Is.EqualTo("user content of " + f), f);
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_ChainOfContentWindows_TreeEqualsNewVersionAndUserFilesKept(CommitStrategy strategy)
    {
        using var s = ChainGame(out var m);

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(m.Recipes.SelectMany(r => r.Ops).SelectMany(o => o.Refs).Count(w => w.Content is not null), Is.EqualTo(2), "B reads A, C reads B");
        AssertNewVersionAndUserFiles(s);
    }

    [Test]
    public void Apply_ChainOfContentWindowsOneTaskAtATime_TreeEqualsNewVersion()
    {
        using var s = ChainGame(out _);

        var result = SimulatedFsRunner.Run(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        AssertNewVersionAndUserFiles(s);
    }

    [Test]
    public void Apply_OnlyTheLastOfTheChainChanges_EarlierContentsRebuiltAsReferencesOnly()
    {
        // The install already has A and B as the new version has them: only C is placed, but it reads B, which reads A.
        using var s = ChainGame(out _);
        foreach (var f in new[] { ContentWindowPatch.A, ContentWindowPatch.B })
            File.Copy(Path.Join(s.NewTree, f), Path.Join(s.OldTree, f));
        TempDir.Remove(s.InstallDir);
        s.Install();
        // Both trees listed whole: a content is named by a file of the new version, and A and B are unchanged ones.
        TempDir.Remove(s.PatchDir);
        Patching.Building.PatchBuilder.Build(new Patching.Building.BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.PatchDir, Product = "demo-game", Version = "2.0.0", FromVersion = "1.0.0",
            PrivateKeyPem = s.PrivateKey, Format = 2, ListUnchanged = true,
        });
        var m = ContentWindowPatch.Rewrite(s);

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, s.Options);

        var unchanged = new[] { ContentWindowPatch.A, ContentWindowPatch.B }.Select(f => ContentWindowPatch.Sha(File.ReadAllBytes(Path.Join(s.NewTree, f))));
        Assert.That(m.Recipes.Select(r => r.Sha256), Is.SupersetOf(unchanged), "the patch rebuilds A and B, which no file needs placed");
        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Apply_ReferencedContentFails_FailsWithItsErrorWithoutHangingAndNothingChanged(bool oneTaskAtATime)
    {
        // A's frame decodes to other bytes than A's signed hash: B and C, which wait on A, must fail with A's error.
        string? a = null;
        using var s = ChainGame(out _, w =>
        {
            // B's window names A, and B comes before C.
            a = w.Manifest.Recipes.SelectMany(r => r.Ops).SelectMany(o => o.Refs).First(x => x.Content is not null).Content;
            var ra = w.Manifest.Recipes.Single(r => r.Sha256 == a);
            w.Replace(ra, 0, w.AppendFrame(ra.Ops[0], ZstdPatch.Compress([], new byte[ra.Ops[0].Length], 3)));
        });
        var before = PatchScenario.Listing(s.ParentDir);

        var apply = Task.Run(() => oneTaskAtATime
            ? SimulatedFsRunner.Run(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options))
            : Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Task.WhenAny(apply, Task.Delay(Guard)).Wait();
        Assert.That(apply.IsCompleted, Is.True, "the apply ends");
        var ex = apply.Exception?.InnerException as PatcherException;
        Assert.That(ex, Is.Not.Null, apply.Exception?.ToString());
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaOutputMismatch));
        Assert.That(ex.Message, Does.Contain($"content {a![..12]}"), "the error is A's own");
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before), "the install and everything beside it are unchanged");
    }

    [Test]
    public void Apply_ContentWindowHashNotTheBytes_DeltaOutputMismatchAndNothingChanged()
    {
        using var s = ChainGame(out _, w =>
        {
            var rc = w.Manifest.Recipes.Last(r => r.Ops.Any(o => o.Refs.Any(x => x.Content is not null)));
            var data = rc.Ops[1];
            // All of B but its last byte (a whole content's window has no hash of its own on the wire).
            w.Replace(rc, 1, data with { Refs = [data.Refs[0] with { Length = data.Refs[0].Length - 1, Sha256 = ContentWindowPatch.Sha(new byte[1]) }] });
        });
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaOutputMismatch));
        Assert.That(ex.Message, Does.Contain("reference window"));
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before));
    }

    [Test]
    public void VerifyAllBlobs_ContentWindows_DecodesOnlyTheFramesWithoutAReference()
    {
        using var s = ChainGame(out var m);
        var package = Sources.PatchPackage.Open(s.PatchDir, ManifestLimits.Default);

        package.VerifyAllBlobs(CancellationToken.None);

        var standalone = m.Recipes.SelectMany(r => r.Ops).Count(o => o.Kind == DeltaOpKind.Data && o.Refs.Count == 0);
        Assert.That(package.BlobReads, Is.EqualTo(standalone), "a frame against an earlier content needs that content: it is checked when applied");
    }

    [Test]
    public void InDependencyOrder_LargerReaderAndIndependentContents_ReadersAfterTheirSourcesLargestFirstOtherwise()
    {
        static ContentRecipe R(string name, long size, params string[] reads) => new()
        {
            Sha256 = name, Size = size,
            Ops = [new DeltaOp { Kind = DeltaOpKind.Data, Length = size, Sha256 = name, Refs = [.. reads.Select(x => RefWindow.InContent(x, 0, 1, x))] }],
        };
        var all = new[] { R("a", 10), R("b", 50, "a"), R("c", 100, "b"), R("d", 30), R("e", 5), R("f", 70, "a", "d") };

        var order = BlobReceiver.InDependencyOrder(all, sha => sha is "c" or "e" or "f");

        // Ready at first: a (10), d (30), e (5), so d, then a; that makes b (50) and f (70, reading a and d) ready: f,
        // then b, which makes c (100) ready: c before e.
        Assert.That(order.Select(r => r.Sha256), Is.EqualTo(new[] { "d", "a", "f", "b", "c", "e" }));
    }
}
