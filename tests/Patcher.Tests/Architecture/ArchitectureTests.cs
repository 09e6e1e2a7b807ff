namespace Patching.Tests.Architecture;

/// <summary>
/// The library's namespaces depend on each other one way, in the order of <see cref="PatcherLayers.Table"/>; and the
/// checker that says so finds a forbidden reference when there is one.
/// </summary>
public sealed class ArchitectureTests
{
    private const string SampleNamespace = "Patching.Tests.Architecture.Sample.";

    private static readonly LayerRules Rules = new(PatcherLayers.Table);

    [Test]
    public void Check_PatcherAssembly_FollowsTheLayerTable()
    {
        var problems = Rules.Check(TypeReferenceReader.Read(typeof(Patcher).Assembly.Location));

        Assert.That(problems, Is.Empty, "forbidden dependencies in the Patcher assembly:\n" + string.Join("\n", problems));
    }

    [Test]
    public void Read_PatcherAssembly_FindsTheFrontDoorsReferences()
    {
        var references = TypeReferenceReader.Read(typeof(Patcher).Assembly.Location);

        Assert.That(references, Does.Contain(new TypeReference("Patching.Patcher", "Patching.PatcherOptions")));
        Assert.That(references.Where(r => r.From == "Patching.Patcher").Select(r => Rules.ComponentOf(r.To)?.Level),
            Has.Some.InRange(1, 8), "the front door calls into the library's layers");
    }

    [Test]
    public void Read_CompiledAssembly_FindsReferencesInSignaturesAndInsideLambdas()
    {
        var sample = SampleReferences();

        Assert.That(sample, Is.EquivalentTo(new[]
        {
            new TypeReference(SampleNamespace + "High.Api", SampleNamespace + "Low.Store"),   // property type, new
            new TypeReference(SampleNamespace + "Low.Store", SampleNamespace + "High.Api"),   // call inside a lambda
        }));
    }

    [Test]
    public void Check_CompiledUpwardReference_ReportsPairAndDirectionWithTypes()
    {
        var rules = new LayerRules(
        [
            new(0, "", "High", SampleNamespace + "High"),
            new(1, "", "Low", SampleNamespace + "Low"),
        ]);

        var problems = rules.Check(SampleReferences());

        Assert.That(problems, Is.EqualTo(new[]
        {
            "two-way: High ↔ Low: Api → Store; back: Store → Api",
            "upward: Low (level 1) → High (level 0): Store → Api",
        }));
    }

    [Test]
    public void Check_UpwardReference_ReportsComponentsLevelsAndTypes()
    {
        var problems = Rules.Check([Ref("Patching.IO.TreeOps", "Patching.Manifests.PathRules")]);

        Assert.That(problems, Is.EqualTo(new[] { "upward: IO (level 8) → Manifests (level 6): TreeOps → PathRules" }));
    }

    [Test]
    public void Check_TwoWayPairOfSiblings_ReportsBothDirections()
    {
        var problems = Rules.Check(
        [
            Ref("Patching.Deltas.DeltaReceiver", "Patching.Sources.PatchPackage"),
            Ref("Patching.Sources.PatchPackage", "Patching.Deltas.ZstdPatch"),
            Ref("Patching.Sources.PatchPackage", "Patching.Deltas.DeltaChecks"),
        ]);

        Assert.That(problems, Is.EqualTo(new[]
        {
            "two-way: Deltas ↔ Sources: DeltaReceiver → PatchPackage; back: PatchPackage → DeltaChecks, PatchPackage → ZstdPatch",
        }));
    }

    [Test]
    public void Check_CycleOfThreeSiblings_ReportsTheCycleOnce()
    {
        var problems = Rules.Check(
        [
            Ref("Patching.Signing.TrustPolicy", "Patching.Manifests.SignatureEnvelope"),
            Ref("Patching.Manifests.ManifestCodec", "Patching.Journal.InstalledRecord"),
            Ref("Patching.Journal.JournalStore", "Patching.Signing.TrustPolicy"),
        ]);

        Assert.That(problems, Is.EqualTo(new[]
        {
            "cycle: Journal → Signing → Manifests → Journal: [Journal → Signing: JournalStore → TrustPolicy] " +
            "[Signing → Manifests: TrustPolicy → SignatureEnvelope] [Manifests → Journal: ManifestCodec → InstalledRecord]",
        }));
    }

    [Test]
    public void Check_PublishSideUsingApplySide_ReportsAcrossSides()
    {
        var problems = Rules.Check([Ref("Patching.Store.ReleaseStore", "Patching.Transaction.StateLayout")]);

        Assert.That(problems, Is.EqualTo(new[] { "across sides: Store (publish) → Pipeline (apply): ReleaseStore → StateLayout" }));
    }

    [Test]
    public void Check_CallIntoTheFrontDoor_ReportsUpward()
    {
        var problems = Rules.Check([Ref("Patching.Update.Updater", "Patching.Patcher")]);

        Assert.That(problems, Is.EqualTo(new[] { "upward: Update (level 1) → Patcher (level 0): Updater → Patcher" }));
    }

    [Test]
    public void Check_NamespaceOutsideTheTable_ReportsTheType()
    {
        var problems = Rules.Check([Ref("Patching.Planning.Planner", "Patching.IO.FileOps")]);

        Assert.That(problems, Is.EqualTo(new[] { "not in the layer table: Patching.Planning.Planner" }));
    }

    [Test]
    public void Check_ReferencesThatFollowTheTable_ReportsNothing()
    {
        var problems = Rules.Check(
        [
            Ref("Patching.Patcher", "Patching.Update.Updater"),
            Ref("Patching.Update.Updater", "Patching.Transaction.TransactionEngine"),
            Ref("Patching.Update.Updater", "Patching.Store.ChannelPointer"),
            Ref("Patching.Transaction.TransactionEngine", "Patching.Recovery.Recoverer"),
            Ref("Patching.Commit.SwapCommit", "Patching.IO.FileOps"),
            Ref("Patching.Staging.Stager", "Patching.Journal.JournalStore"),
            Ref("Patching.Sources.PatchPackage", "Patching.Manifests.Manifest"),
            Ref("Patching.HttpSource", "Patching.Sources.SourceNames"),
            Ref("Patching.Store.ReleaseStore", "Patching.Building.Chunker"),
            Ref("Patching.Building.PatchBuilder", "Patching.Signing.SigningKeys"),
            Ref("Patching.Progress.ProgressTracker", "Patching.PatchProgress"),
            Ref("Patching.IO.FileOps", "Patching.IO.Interop.Libc"),
            Ref("Patching.IO.FileOps", "Patching.PatcherException"),
        ]);

        Assert.That(problems, Is.Empty);
    }

    private static TypeReference Ref(string from, string to) => new(from, to);

    private static List<TypeReference> SampleReferences() =>
        TypeReferenceReader.Read(typeof(ArchitectureTests).Assembly.Location)
            .Where(r => r.From.StartsWith(SampleNamespace, StringComparison.Ordinal) && r.To.StartsWith(SampleNamespace, StringComparison.Ordinal))
            .ToList();
}
