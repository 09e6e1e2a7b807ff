using Patching.Manifests;

namespace Patching.Tests.Manifests;

public sealed class ManifestValidatorTests
{
    private static Manifest WithEmptyFile(string sha256) => new()
    {
        Product = "p",
        Version = "1.0.0",
        Created = DateTimeOffset.UnixEpoch,
        Directories = [],
        Files = [new TargetFile { Path = "empty.txt", Size = 0, Sha256 = sha256, Parts = [] }],
        Base = [],
        Blobs = [],
    };

    [Test]
    public void Validate_EmptyFileWithTheHashOfNoBytes_Accepted() =>
        Assert.DoesNotThrow(() => ManifestValidator.Validate(WithEmptyFile(ManifestValidator.EmptySha256), ManifestLimits.Default));

    [Test]
    public void Validate_EmptyFileDeclaringAnotherHash_ManifestMalformed()
    {
        var ex = Assert.Throws<PatcherException>(() => ManifestValidator.Validate(WithEmptyFile(new string('a', 64)), ManifestLimits.Default));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Path, Is.EqualTo("empty.txt"));
    }

    [Test]
    public void Deserialize_FormatKeyTwiceWithDifferentValues_ManifestMalformed()
    {
        var bytes = ManifestCodec.Serialize(WithEmptyFile(ManifestValidator.EmptySha256));
        var text = System.Text.Encoding.UTF8.GetString(bytes).TrimEnd().TrimEnd('}') + ", \"format\": 2 }";

        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(System.Text.Encoding.UTF8.GetBytes(text)));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("format twice"));
    }
}
