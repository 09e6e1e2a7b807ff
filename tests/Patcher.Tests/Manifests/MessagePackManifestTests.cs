using MessagePack;
using Patching.Manifests;
using Patching.Tests.TestHelpers;
using static Patching.Tests.TestHelpers.MessagePackEdit;

namespace Patching.Tests.Manifests;

/// <summary>The format 2 reader is as strict as the JSON one: every deviation from the layout is refused with a specific code.</summary>
public sealed class MessagePackManifestTests
{
    private static byte[] Golden => File.ReadAllBytes(Path.Join(RepoPaths.Golden, "format2-sample-1.0.0-to-1.1.0", ManifestCodec.BinaryManifestFileName));

    private static byte[] With(string key, byte[] value) => MessagePackEdit.With(Golden, key, value);

    private static PatcherException Refused(byte[] bytes) => Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(bytes))!;

    [Test]
    public void Deserialize_GoldenRewrittenEntryByEntry_SameBytesAndSameManifest()
    {
        var rebuilt = Emit(Entries(Golden));

        Assert.That(rebuilt, Is.EqualTo(Golden), "the test's rewriter must not change bytes by itself");
        Assert.That(MessagePackManifest.Serialize(ManifestCodec.Deserialize(rebuilt)), Is.EqualTo(Golden));
    }

    [Test]
    public void Deserialize_StringWhereAnIntegerBelongs_ManifestMalformed()
    {
        var ex = Refused(With("payload", Value((ref MessagePackWriter w) => w.Write("932"))));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void Deserialize_IntegerWhereAStringBelongs_ManifestMalformed()
    {
        var ex = Refused(With("product", Value((ref MessagePackWriter w) => w.Write(7))));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("string was expected"));
    }

    [Test]
    public void Deserialize_BytesAfterTheMap_ManifestMalformed()
    {
        var ex = Refused([.. Golden, 0xc0]);

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("bytes follow"));
    }

    [Test]
    public void Deserialize_Truncated_ManifestMalformed()
    {
        for (var cut = 1; cut < Golden.Length; cut += 37)
        {
            var ex = Refused(Golden[..^cut]);
            Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed), $"cut {cut}");
        }
    }

    [Test]
    public void Deserialize_FormatThree_ManifestUnsupportedFormat()
    {
        var ex = Refused(With("format", Value((ref MessagePackWriter w) => w.Write(3))));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestUnsupportedFormat));
        Assert.That(ex.Message, Does.Contain("format 3 is not supported"));
    }

    [Test]
    public void Deserialize_FormatNotTheFirstKey_ManifestMalformed()
    {
        var entries = Entries(Golden);
        var ex = Refused(Emit(entries.Skip(1).Append(entries[0])));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("first key"));
    }

    [Test]
    public void Deserialize_RequiredKeyMissing_ManifestMalformed()
    {
        var ex = Refused(Emit(Entries(Golden).Where(e => e.Key != "payload")));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("lacks a required key"));
    }

    [Test]
    public void Deserialize_InvalidUtf8InAPath_ManifestMalformed()
    {
        var ex = Refused(With("directories", Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteString([0x64, 0xff, 0x64]);
        })));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void Deserialize_HashOf31Bytes_ManifestMalformed()
    {
        var ex = Refused(With("base", Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(3);
            w.Write("a.txt");
            w.Write(1L);
            w.Write(new byte[31]);
        })));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("32 expected"));
    }

    [Test]
    public void Deserialize_ArrayHeaderClaimingTwoBillionFiles_ManifestMalformedWithoutAllocating()
    {
        var ex = Refused(With("files", [0xdd, 0x7f, 0xff, 0xff, 0xff]));

        // MessagePackReader itself refuses a count beyond the bytes left; ReadArrayHeader checks it again for arrays it reads.
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void Deserialize_NilHashOfARangeThatIsNotAWholeBaseFile_ManifestMalformed()
    {
        // A content of two copies, the first without a hash although it is only part of base file 0.
        var m = ManifestCodec.Deserialize(Golden);
        var size = m.Base[0].Size;
        var ex = Refused(With("contents", Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(2);
            w.Write(0);
            w.WriteArrayHeader(2);
            foreach (var half in new[] { 0L, 1L })
            {
                w.WriteArrayHeader(5);
                w.Write(0);
                w.Write(1L);
                w.WriteNil();
                w.Write(0);
                w.Write(half);
            }
        })));

        Assert.That(size, Is.GreaterThan(1));
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("has no hash"));
    }

    [Test]
    public void Deserialize_FileFlagsOtherThanExecutable_ManifestMalformed()
    {
        var m = ManifestCodec.Deserialize(Golden);
        var f = m.Files[0];
        var ex = Refused(With("files", Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteArrayHeader(4);
            w.Write(f.Path);
            w.Write(f.Size);
            w.Write(Convert.FromHexString(f.Sha256));
            w.Write(2);
        })));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("unknown flags"));
    }
}
