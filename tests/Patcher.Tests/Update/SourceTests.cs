using Patching.Tests.TestHelpers;

namespace Patching.Tests.Update;

/// <summary>The sources read only plain names inside their root, and report a missing object the same way.</summary>
public sealed class SourceTests
{
    [TestCase("../secret")]
    [TestCase("blobs/../../secret")]
    [TestCase("/etc/passwd")]
    [TestCase("Blobs/UPPER")]
    [TestCase("a//b")]
    public void DirectorySource_NameOutsidePlainGrammar_RefusedBeforeAnyRead(string name)
    {
        using var temp = TempDir.ForCurrentTest();
        var source = new DirectorySource(temp.Dir("store"));
        Assert.ThrowsAsync<ArgumentException>(async () => await source.ReadAllAsync(name, 1024, CancellationToken.None));
        Assert.ThrowsAsync<ArgumentException>(async () => await source.ReadAsync(name, 0, 1, CancellationToken.None));
    }

    [Test]
    public async Task DirectorySource_MissingObject_NullWholeAndSourceObjectMissingRange()
    {
        using var temp = TempDir.ForCurrentTest();
        var source = new DirectorySource(temp.Dir("store"));
        Assert.That(await source.ReadAllAsync("channels/stable.json", 1024, CancellationToken.None), Is.Null);
        var ex = Assert.ThrowsAsync<PatcherException>(async () => await source.ReadAsync("blobs/ab/abcd", 0, 10, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SourceObjectMissing));
    }

    [Test]
    public async Task HttpSource_RangeRead_ReturnsExactlyTheRangeAskedFromAServerThatHonoursRange()
    {
        using var temp = TempDir.ForCurrentTest();
        var bytes = Enumerable.Range(0, 10_000).Select(i => (byte)i).ToArray();
        TreeFactory.WriteFile(temp.Dir("store"), "blobs/ab/abcd", bytes);
        await using var server = await StoreServer.StartAsync(temp["store"]);
        using var source = new HttpSource(server.BaseUri);
        Assert.That(await source.ReadAsync("blobs/ab/abcd", 1234, 100, CancellationToken.None), Is.EqualTo(bytes.AsSpan(1234, 100).ToArray()));
        Assert.That(source.BytesReceived, Is.EqualTo(100), "only the range travelled");
    }
}
