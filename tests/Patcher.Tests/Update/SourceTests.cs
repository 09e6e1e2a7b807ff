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

    [Test]
    public async Task HttpSourceBandwidth_MoreThanTheBurst_WaitsWhatTheRateRequiresOnAFakeClock()
    {
        var time = new FakeTimeProvider();
        var bucket = new Patching.Sources.HttpSourceBandwidth(1000, time);

        await bucket.TakeAsync(250, CancellationToken.None);   // the quarter second saved up
        Assert.That(time.Delays, Is.Empty);
        await bucket.TakeAsync(1000, CancellationToken.None);  // a second's worth more
        await bucket.TakeAsync(500, CancellationToken.None);   // the clock moved by the wait, which refilled nothing beyond it

        Assert.That(time.Delays, Is.EqualTo(new[] { TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(0.5) }));
        Assert.That(time.Elapsed, Is.EqualTo(TimeSpan.FromSeconds(1.5)));
    }

    [TestCase(0, 0.0)]
    [TestCase(100_000, 9.75)]
    public async Task HttpSource_MaxBytesPerSecond_ReadTakesWhatTheRateRequiresOnAFakeClock(long rate, double seconds)
    {
        using var temp = TempDir.ForCurrentTest();
        var bytes = new byte[1_000_000];
        new Random(3).NextBytes(bytes);
        TreeFactory.WriteFile(temp.Dir("store"), "pieces/ab/abcd.zst", bytes);
        await using var server = await StoreServer.StartAsync(temp["store"]);
        var time = new FakeTimeProvider();
        using var source = new HttpSource(server.BaseUri, new HttpSourceOptions { MaxBytesPerSecond = rate, TimeProvider = time });

        Assert.That(await source.ReadAsync("pieces/ab/abcd.zst", 0, bytes.Length, CancellationToken.None), Is.EqualTo(bytes));

        // A megabyte at 100 kB/s, less the quarter second's burst: 9.75 s on the fake clock, whatever the real time.
        Assert.That(time.Elapsed.TotalSeconds, Is.EqualTo(seconds).Within(0.001));
    }
}
