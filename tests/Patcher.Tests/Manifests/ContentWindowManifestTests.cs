using System.Security.Cryptography;
using MessagePack;
using Patching.Manifests;
using Patching.Tests.TestHelpers;
using static Patching.Tests.TestHelpers.MessagePackEdit;

namespace Patching.Tests.Manifests;

/// <summary>
/// Reference windows into a content rebuilt by an earlier entry of <c>contents</c>: the 5-element form on the wire, and
/// the validator's rule that such a window names an earlier content and lies inside it.
/// </summary>
public sealed class ContentWindowManifestTests
{
    private static readonly byte[] Old = Bytes(1, 1_000);
    private static readonly byte[] A = Bytes(2, 3_000);
    private static readonly byte[] B = Bytes(3, 2_000);
    private static readonly byte[] C = Bytes(4, 1_500);

    private static byte[] Bytes(int seed, int length)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static DeltaOp Data(byte[] output, long payloadOffset, params RefWindow[] refs) =>
        new() { Kind = DeltaOpKind.Data, Length = output.Length, Sha256 = Sha(output), PayloadOffset = payloadOffset, StoredLength = 10, Refs = refs };

    private static RefWindow WholeA => RefWindow.InContent(Sha(A), 0, A.Length, Sha(A));

    private static RefWindow PartOfA => RefWindow.InContent(Sha(A), 100, 500, Sha(A.AsSpan(100, 500)));

    /// <summary>Three contents: A shipped whole, B against base file old.bin and all of A, C against part of A and all of B.</summary>
    private static Manifest Chain(params IReadOnlyList<RefWindow>[] refs) => new()
    {
        Format = 2, Product = "demo-game", Version = "2", FromVersion = "1", Created = DateTimeOffset.UnixEpoch, Directories = [],
        Files = [TargetFile.Whole("a.bin", A.Length, Sha(A)), TargetFile.Whole("b.bin", B.Length, Sha(B)), TargetFile.Whole("c.bin", C.Length, Sha(C))],
        Base = [new BaseFile { Path = "old.bin", Size = Old.Length, Sha256 = Sha(Old) }],
        BaseDirectories = [],
        Blobs = [],
        Recipes =
        [
            new ContentRecipe { Sha256 = Sha(A), Size = A.Length, Ops = [Data(A, 0, [.. refs.ElementAtOrDefault(0) ?? []])] },
            new ContentRecipe { Sha256 = Sha(B), Size = B.Length, Ops = [Data(B, 10, [.. refs.ElementAtOrDefault(1) ?? [new RefWindow("old.bin", 0, Old.Length, Sha(Old)), WholeA]])] },
            new ContentRecipe
            {
                Sha256 = Sha(C), Size = C.Length,
                Ops = [Data(C.AsSpan(0, 700).ToArray(), 20, [.. refs.ElementAtOrDefault(2) ?? [PartOfA, RefWindow.InContent(Sha(B), 0, B.Length, Sha(B))]]), Data(C.AsSpan(700).ToArray(), 30)],
            },
        ],
        PayloadSize = 40,
    };

    private static string Describe(Manifest m) => string.Join("\n", m.Recipes.Select(r =>
        $"{r.Sha256} {r.Size}: " + string.Join("; ", r.Ops.Select(o => $"{o.Kind} {o.Length} {o.Sha256} {o.PayloadOffset} {o.StoredLength} [{string.Join(", ", o.Refs)}]"))));

    [Test]
    public void Serialize_ContentWindows_ReadBackAsTheSameWindows()
    {
        var m = Chain();

        var bytes = MessagePackManifest.Serialize(m);
        var read = ManifestCodec.Deserialize(bytes);

        Assert.That(Describe(read), Is.EqualTo(Describe(m)));
        Assert.That(read.Recipes[2].Ops[0].Refs.Select(w => w.Content), Is.EqualTo(new[] { Sha(A), Sha(B) }));
        Assert.That(read.Recipes[1].Ops[0].Refs[0].Content, Is.Null, "a base window stays a base window");
        Assert.That(MessagePackManifest.Serialize(read), Is.EqualTo(bytes));
    }

    [Test]
    public void Serialize_WindowOfAWholeContent_WritesNilForItsHash()
    {
        var whole = MessagePackManifest.Serialize(Chain());
        var signed = MessagePackManifest.Serialize(Chain(null!, null!, [PartOfA, RefWindow.InContent(Sha(B), 0, B.Length - 1, Sha(B.AsSpan(0, B.Length - 1)))]));

        // A 32-byte binary is 34 bytes on the wire, nil one; the shorter length may take one byte fewer too.
        Assert.That(signed.Length - whole.Length, Is.InRange(33, 34));
        Assert.That(ManifestCodec.Deserialize(whole).Recipes[2].Ops[0].Refs[1].Sha256, Is.EqualTo(Sha(B)));
    }

    /// <summary>A window of <paramref name="fields"/> elements starting with <paramref name="tag"/>: neither form of a window.</summary>
    [TestCase(5, 2, "tag 2")]
    [TestCase(6, 1, "6 fields")]
    [TestCase(3, 1, "3 fields")]
    public void Deserialize_WindowOfAnotherShape_ManifestMalformed(int fields, int tag, string message)
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(WithWindow((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(fields);
            w.Write(tag);
            for (var i = 1; i < fields; i++) w.Write(0);
        })));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain(message));
    }

    [Test]
    public void Deserialize_ContentIndexOutOfRange_DeltaReferenceNotEarlier()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(WithWindow((ref MessagePackWriter w) => ContentWindow(ref w, 7, 0, 10, Sha(A.AsSpan(0, 10))))));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceNotEarlier));
        Assert.That(ex.Message, Does.Contain("content 7"));
    }

    [Test]
    public void Deserialize_NilHashOfAPartOfAContent_ManifestMalformed()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(WithWindow((ref MessagePackWriter w) => ContentWindow(ref w, 0, 1, A.Length - 1, null))));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("not the whole content"));
    }

    [Test]
    public void Validate_WindowNamingALaterContentByIndex_DeltaReferenceNotEarlier()
    {
        // B's window names content 2 (C), which comes after it.
        var read = ManifestCodec.Deserialize(WithWindow((ref MessagePackWriter w) => ContentWindow(ref w, 2, 0, C.Length, null)));
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(read, ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceNotEarlier));
        Assert.That(ex.Message, Does.Contain(Sha(C)));
    }

    [Test]
    public void Validate_WindowInALaterContent_DeltaReferenceNotEarlier()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(Chain(null!, [RefWindow.InContent(Sha(C), 0, 10, Sha(C.AsSpan(0, 10)))]), ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceNotEarlier));
        Assert.That(ex.Path, Is.EqualTo(Sha(C)));
    }

    [Test]
    public void Validate_WindowInItsOwnContent_DeltaReferenceNotEarlier()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(Chain(null!, [RefWindow.InContent(Sha(B), 0, 10, Sha(B.AsSpan(0, 10)))]), ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceNotEarlier));
        Assert.That(ex.Message, Does.Contain($"reads content {Sha(B)}"));
    }

    [Test]
    public void Validate_WindowInAContentNoRecipeRebuilds_DeltaReferenceNotEarlier()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(Chain(null!, [RefWindow.InContent(Sha(Old), 0, 10, Sha(Old.AsSpan(0, 10)))]), ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceNotEarlier));
    }

    [Test]
    public void Validate_WindowPastTheEndOfItsContent_DeltaReferenceOutsideBaseNamingTheContent()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(Chain(null!, [RefWindow.InContent(Sha(A), A.Length - 10, 11, Sha(A.AsSpan(0, 11)))]), ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DeltaReferenceOutsideBase));
        Assert.That(ex.Message, Does.Contain($"of content {Sha(A)}, outside it"));
    }

    [Test]
    public void Validate_ContentAndBaseWindowsOverTheLimit_LimitExceeded()
    {
        var refs = new[] { new RefWindow("old.bin", 0, Old.Length, Sha(Old)), WholeA, PartOfA, WholeA, PartOfA };
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(Chain(null!, refs), ManifestLimits.Default));

        Assert.That(refs, Has.Length.EqualTo(DeltaLimits.MaxRefs + 1));
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.LimitExceeded));
    }

    [Test]
    public void Validate_TheChain_Accepted()
    {
        Assert.DoesNotThrow(() => ManifestValidator.Validate(Chain(), ManifestLimits.Default));
    }

    /// <summary>The chain's manifest with B's reference windows replaced by the one <paramref name="window"/> writes.</summary>
    private static byte[] WithWindow(MessagePackEdit.Write window)
    {
        var m = Chain();
        var bytes = MessagePackManifest.Serialize(m with { Recipes = [m.Recipes[0], m.Recipes[1] with { Ops = [m.Recipes[1].Ops[0] with { Refs = [WholeA] }] }, m.Recipes[2]] });
        var contents = Get(bytes, "contents");
        // B's entry is [1, [[1, length, nil, offset, stored, [window]]]]: find its one window (whole A, nil hash) and swap it.
        var wholeA = Value((ref MessagePackWriter w) => ContentWindow(ref w, 0, 0, A.Length, null));
        var at = contents.AsSpan().IndexOf(wholeA);
        Assert.That(at, Is.GreaterThan(0), "the test finds B's window in the bytes");
        return With(bytes, "contents", [.. contents.AsSpan(0, at), .. Value(window), .. contents.AsSpan(at + wholeA.Length)]);
    }

    private static void ContentWindow(ref MessagePackWriter w, int content, long offset, long length, string? sha)
    {
        w.WriteArrayHeader(5);
        w.Write(MessagePackManifest.ContentWindowTag);
        w.Write(content);
        w.Write(offset);
        w.Write(length);
        if (sha is null) w.WriteNil();
        else w.Write(Convert.FromHexString(sha));
    }
}
