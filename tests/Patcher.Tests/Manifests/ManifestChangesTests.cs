using MessagePack;
using Patching.Manifests;
using Patching.Signing;
using Patching.Tests.TestHelpers;
using static Patching.Tests.TestHelpers.MessagePackEdit;

namespace Patching.Tests.Manifests;

/// <summary>
/// A format 2 manifest that lists only changes, against the golden pair: it composes to exactly the manifest that lists
/// both trees, the journal's composed record reads alone and keeps its signature verifiable, and every inconsistency
/// is refused with a specific code.
/// </summary>
public sealed class ManifestChangesTests
{
    private static string Dir => Path.Join(RepoPaths.Golden, "format2-changes-sample-1.0.0-to-1.1.0");
    private static byte[] Changes => File.ReadAllBytes(Path.Join(Dir, ManifestCodec.BinaryManifestFileName));
    private static byte[] BaseBytes => File.ReadAllBytes(Path.Join(Dir, VersionManifest.FileName));
    private static VersionListing Base => VersionManifest.Deserialize(BaseBytes, null);
    private static Manifest BothTrees => ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "format2-sample-1.0.0-to-1.1.0", ManifestCodec.BinaryManifestFileName)));

    /// <summary>Files as values (a file's parts are a list, which record equality compares by reference).</summary>
    private static List<(string, long, string, bool)> Listing(IEnumerable<TargetFile> files) => files.Select(f => (f.Path, f.Size, f.Sha256, f.Executable)).ToList();

    private static PatcherException Refused(byte[] bytes) =>
        Assert.Throws<PatcherException>(() => MessagePackManifest.Deserialize(bytes, null, Base))!;

    [Test]
    public void Deserialize_ChangesOverBase_ComposesTheManifestListingBothTrees()
    {
        var composed = MessagePackManifest.Deserialize(Changes, null, Base);
        var whole = BothTrees;

        Assert.That(Listing(composed.Files), Is.EqualTo(Listing(whole.Files)));
        Assert.That(composed.Base, Is.EqualTo(whole.Base));
        Assert.That(composed.Directories, Is.EqualTo(whole.Directories));
        Assert.That(composed.BaseDirectories, Is.EqualTo(whole.BaseDirectories));
        Assert.That(composed.Recipes.Select(r => (r.Sha256, r.Size, Ops: string.Join(";", r.Ops.Select(o => $"{o.Kind} {o.Length} {o.Sha256} {o.BasePath} {o.BaseOffset} {o.PayloadOffset} {o.StoredLength} {string.Join(",", o.Refs)}")))),
            Is.EqualTo(whole.Recipes.Select(r => (r.Sha256, r.Size, Ops: string.Join(";", r.Ops.Select(o => $"{o.Kind} {o.Length} {o.Sha256} {o.BasePath} {o.BaseOffset} {o.PayloadOffset} {o.StoredLength} {string.Join(",", o.Refs)}"))))));
        Assert.That(Changes.Length, Is.LessThan(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "format2-sample-1.0.0-to-1.1.0", ManifestCodec.BinaryManifestFileName)).Length));
    }

    [Test]
    public void Deserialize_ChangesWithoutBase_BaseManifestMissing()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(Changes));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseManifestMissing));
    }

    [Test]
    public void ComposedRecord_Deserialize_ReadsAloneAsTheComposedManifest()
    {
        var record = ComposedManifest.Serialize(Changes, BaseBytes);

        var m = ManifestCodec.Deserialize(record);

        Assert.That(Listing(m.Files), Is.EqualTo(Listing(BothTrees.Files)));
        Assert.That(VersionManifest.Serialize(m.BaseVersion!), Is.EqualTo(BaseBytes));
    }

    [Test]
    public void ComposedRecord_SignedPart_IsTheSignedBytesAndVerifies()
    {
        var record = ComposedManifest.Serialize(Changes, BaseBytes);
        var envelope = ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(Path.Join(Dir, ManifestCodec.SignatureFileName)));
        using var policy = TrustPolicy.FromPems([File.ReadAllText(RepoPaths.TestPub)], 1);

        var signed = ComposedManifest.SignedPart(record, null);

        Assert.That(signed, Is.EqualTo(Changes));
        Assert.DoesNotThrow(() => policy.Verify(signed, envelope, null));
    }

    [Test]
    public void ComposedRecord_BaseSwapped_BaseManifestMismatch()
    {
        var other = VersionManifest.Serialize(Base with { Files = [.. Base.Files.Skip(1)] });
        var record = ComposedManifest.Serialize(Changes, other);

        var ex = Assert.Throws<PatcherException>(() => ComposedManifest.SignedPart(record, null));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseManifestMismatch));
    }

    [Test]
    public void Deserialize_TargetHashOfAnotherTree_ManifestMalformed()
    {
        var ex = Refused(With(Changes, MessagePackManifest.KTargetManifest, Value((ref MessagePackWriter w) => w.Write(new byte[32]))));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("the manifest signs 0000"));
    }

    [Test]
    public void Deserialize_BothTreesAndChanges_ManifestMalformed()
    {
        var files = Get(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "format2-sample-1.0.0-to-1.1.0", ManifestCodec.BinaryManifestFileName)), MessagePackManifest.KFiles);
        var ex = Refused(Emit([.. Entries(Changes), (MessagePackManifest.KFiles, files)]));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("which a manifest listing only changes does not"));
    }

    [Test]
    public void Deserialize_RemovedGivenTwice_ManifestMalformed()
    {
        var ex = Refused(Emit([.. Entries(Changes), (MessagePackManifest.KRemoved, Get(Changes, MessagePackManifest.KRemoved))]));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("appears twice"));
    }

    [Test]
    public void Deserialize_ChangeEqualToTheBaseEntry_ManifestMalformed()
    {
        var unchanged = Base.Files.Single(f => f.Path == "game.cfg");
        var changed = Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(4);
            w.Write(unchanged.Path);
            w.Write(unchanged.Size);
            w.Write(Convert.FromHexString(unchanged.Sha256));
            w.Write(0);
        });

        var ex = Refused(With(Changes, MessagePackManifest.KChanged, changed));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("'game.cfg' is the same as in the base version"));
    }

    [Test]
    public void VersionManifest_KeysInAnotherOrder_ManifestMalformed()
    {
        var entries = Entries(BaseBytes);
        var reordered = Emit([entries[0], entries[2], entries[1], entries[3], entries[4]]);

        var ex = Assert.Throws<PatcherException>(() => VersionManifest.Deserialize(reordered, null));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void VersionManifest_OfAnyManifestOfTheVersion_IsTheSameBytes()
    {
        // The builder wrote base.msgpack from the old tree; the 1.0.0 full package describes the same tree.
        var full = ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "format2-sample-full-1.0.0", ManifestCodec.BinaryManifestFileName)));
        var json = ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(RepoPaths.Golden, "sample-full-1.0.0", ManifestCodec.ManifestFileName)));

        Assert.That(VersionManifest.Serialize(VersionListing.TargetOf(full)), Is.EqualTo(BaseBytes));
        Assert.That(VersionManifest.Serialize(VersionListing.TargetOf(json)), Is.EqualTo(BaseBytes));
    }
}
