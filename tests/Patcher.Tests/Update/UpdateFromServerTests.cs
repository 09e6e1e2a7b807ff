using Patching.Store;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Update;

/// <summary>
/// <see cref="Patcher.UpdateAsync"/> against a release store served over HTTP on loopback (TestHelpers/StoreServer), with faults injected by the
/// server: each run ends in the old version or the new one exactly, with a specific error where it fails.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class UpdateFromServerTests
{
    private const string Product = "server-game";
    private static readonly string[] UserFile = ["saves/slot1.sav"];

    private TempDir _temp = null!;
    private StoreServer _server = null!;
    private string _store = null!;
    private string _install = null!;

    [SetUp]
    public async Task SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        _store = _temp.Dir("store");
        _install = _temp.Dir("installs/game");
        _server = await StoreServer.StartAsync(_store);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    private static string Key => File.ReadAllText(RepoPaths.TestKey);

    private static UpdateOptions Options(TimeProvider? time = null, int parallel = 4, bool fullRepair = false) => new()
    {
        Apply = new PatcherOptions { TrustedKeys = [File.ReadAllText(RepoPaths.TestPub)], TimeProvider = time ?? TimeProvider.System },
        MaxParallelDownloads = parallel,
        FullRepair = fullRepair,
    };

    private HttpSource Source(int attempts = 4) =>
        new(_server.BaseUri, new HttpSourceOptions { MaxAttempts = attempts, RetryDelay = TimeSpan.FromMilliseconds(5), RequestTimeout = TimeSpan.FromSeconds(10) });

    /// <summary>
    /// Version trees: v1 has three big files of random bytes (many pieces each) and small ones; v2 changes 100 bytes in
    /// the middle of one big file and adds a file; v3 also inserts 5000 bytes near the start of another and renames a third.
    /// </summary>
    private string Tree(int version)
    {
        var dir = _temp["trees/v" + version];
        if (Directory.Exists(dir)) return dir;
        var random = new Random(42);
        var big = Enumerable.Range(0, 3).Select(_ =>
        {
            var b = new byte[700_000];
            random.NextBytes(b);
            return b;
        }).ToArray();
        TreeFactory.WriteFile(dir, "data/a.pak", big[0]);
        TreeFactory.WriteFile(dir, "data/b.pak", big[1]);
        TreeFactory.WriteFile(dir, version >= 3 ? "data/c-renamed.pak" : "data/c.pak", big[2]);
        TreeFactory.WriteFile(dir, "readme.txt", System.Text.Encoding.UTF8.GetBytes($"version {version}\n"));
        TreeFactory.WriteFile(dir, "bin/run.sh", "#!/bin/sh\n"u8.ToArray(), executable: true);
        if (version >= 2)
        {
            var a = File.ReadAllBytes(Path.Join(dir, "data/a.pak"));
            random.NextBytes(a.AsSpan(350_000, 100));
            File.WriteAllBytes(Path.Join(dir, "data/a.pak"), a);
            TreeFactory.WriteFile(dir, "data/new.txt", "added in v2\n"u8.ToArray());
        }

        if (version >= 3)
        {
            var inserted = new byte[5000];
            random.NextBytes(inserted);
            File.WriteAllBytes(Path.Join(dir, "data/b.pak"), [.. big[1].AsSpan(0, 20_000), .. inserted, .. big[1].AsSpan(20_000)]);
        }

        return dir;
    }

    private PublishResult Publish(int version, TimeProvider? time = null, int? deltaFrom = null) => ReleaseStore.Publish(new PublishRequest
    {
        StoreDir = _store, TreeDir = Tree(version), Product = Product, Version = $"{version}.0.0", PrivateKeyPem = Key,
        Channel = "stable", Time = time ?? TimeProvider.System, Level = 3, DeltaFrom = deltaFrom is { } f ? $"{f}.0.0" : null,
    });

    private string Listing() => HashListing.Text(_install, p => p == "saves" || p.StartsWith("saves/", StringComparison.Ordinal));

    /// <summary>Installs v1 through the update path itself (an empty folder holding a player's save).</summary>
    private async Task InstallV1()
    {
        Publish(1);
        TreeFactory.WriteFile(_install, UserFile[0], "slot 1\n"u8.ToArray());
        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());
        Assert.That(result.Status, Is.EqualTo(UpdateStatus.Updated));
        Assert.That(Listing(), Is.EqualTo(HashListing.Text(Tree(1))));
    }

    private void AssertVersion(int version)
    {
        Assert.That(Listing(), Is.EqualTo(HashListing.Text(Tree(version))));
        Assert.That(File.ReadAllText(Path.Join(_install, UserFile[0])), Is.EqualTo("slot 1\n"), "the player's file is kept");
        Assert.That(Patcher.Status(_install).InstalledVersion, Is.EqualTo($"{version}.0.0"));
    }

    /// <summary>The channel pointer and its signature as the store holds them now, to be replayed later.</summary>
    private (byte[] Pointer, byte[] Signature) SavePointer() => (_server.FileBytes("channels/stable.json"), _server.FileBytes("channels/stable.sig"));

    /// <summary>Serves a saved (older, validly signed) pointer again, as a replaying mirror would.</summary>
    private void ReplayPointer((byte[] Pointer, byte[] Signature) saved)
    {
        File.WriteAllBytes(Path.Join(_store, "channels/stable.json"), saved.Pointer);
        File.WriteAllBytes(Path.Join(_store, "channels/stable.sig"), saved.Signature);
    }

    /// <summary>Changes one byte of a file in place (same size).</summary>
    private static void FlipBits(string path, int offset, byte mask)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[offset] ^= mask;
        File.WriteAllBytes(path, bytes);
    }

    private static async Task<PatcherException> Fails(Func<Task> action) =>
        Assert.ThrowsAsync<PatcherException>(async () => await action())!;

    [Test]
    public async Task UpdateAsync_EmptyFolder_InstallsLatestAndKeepsUserFile()
    {
        await InstallV1();
        AssertVersion(1);
        Assert.That(Directory.Exists(Path.Join(_temp["installs"], ".game.patcher", "downloads", "1.0.0")), Is.False, "the download folder of a committed version is removed");
    }

    [Test]
    public async Task UpdateAsync_ThreeVersionsBehind_FetchesOnlyPiecesTheInstallLacks()
    {
        await InstallV1();
        Publish(2);
        var full = Publish(3);
        var v1Pieces = ReleaseStore.Publish(new PublishRequest { StoreDir = _temp.Dir("scratch"), TreeDir = Tree(1), Product = Product, Version = "1.0.0", PrivateKeyPem = Key });
        var servedBefore = _server.BlobBytesServed;

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        var fetched = _server.BlobBytesServed - servedBefore;
        Assert.That(result.BytesDownloaded, Is.EqualTo(fetched));
        Assert.That(fetched, Is.GreaterThan(0).And.LessThan(full.TotalBytes / 4), $"fetched {fetched} of a {full.TotalBytes}-byte version");
        Assert.That(result.PiecesReused + result.PiecesDownloaded, Is.EqualTo(full.Pieces));
        TestContext.Progress.WriteLine($"three versions behind: fetched {fetched} bytes of {full.TotalBytes} ({(double)fetched / full.TotalBytes:P2}); v1 had {v1Pieces.Pieces} pieces");
    }

    [Test]
    public async Task UpdateAsync_ConnectionDroppedMidPiece_RetriesThatPieceOnceAndUpdates()
    {
        await InstallV1();
        Publish(3);
        string? dropped = null;
        _server.Fault = async (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path) || n != 1 || Interlocked.CompareExchange(ref dropped, path, null) is not null) return FaultAction.None;
            await StoreServer.DropAfter(context, _server.FileBytes(path), _server.FileBytes(path).Length / 2);
            return FaultAction.Handled;
        };

        using var source = Source();
        await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        Assert.That(dropped, Is.Not.Null);
        Assert.That(_server.Requests(dropped!), Is.EqualTo(2));
        Assert.That(_server.RequestCounts.Where(kv => StoreServer.IsPiece(kv.Key) && kv.Key != dropped).All(kv => kv.Value == 1), Is.True);
    }

    [TestCase(500)]
    [TestCase(503)]
    public async Task UpdateAsync_ServerErrorsOnFirstTry_RetriesAndUpdates(int status)
    {
        await InstallV1();
        Publish(3);
        _server.Fault = (context, path, n) =>
        {
            if (n > 1) return Task.FromResult(FaultAction.None);
            context.Response.StatusCode = status;
            return Task.FromResult(FaultAction.Handled);
        };

        using var source = Source();
        await Patcher.UpdateAsync(_install, source, Options());
        AssertVersion(3);
    }

    [Test]
    public async Task UpdateAsync_ServerAlways503_FailsSourceUnavailableWithBoundedRequestsAndKeepsOldVersion()
    {
        await InstallV1();
        Publish(3);
        var before = Listing();
        var requestsBefore = _server.BlobRequests;
        _server.Fault = (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path)) return Task.FromResult(FaultAction.None);
            context.Response.StatusCode = 503;
            return Task.FromResult(FaultAction.Handled);
        };

        using var source = Source(attempts: 3);
        var ex = await Fails(() => Patcher.UpdateAsync(_install, source, Options(parallel: 1)));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.SourceUnavailable));
        Assert.That(Listing(), Is.EqualTo(before));
        Assert.That(_server.BlobRequests - requestsBefore, Is.EqualTo(3), "one piece, three attempts, then the update stops");
    }

    [Test]
    public async Task UpdateAsync_TruncatedBodyOnce_RetriesAndUpdates()
    {
        await InstallV1();
        Publish(3);
        var truncated = 0;
        _server.Fault = async (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path) || n != 1 || Interlocked.Increment(ref truncated) > 1) return FaultAction.None;
            var bytes = _server.FileBytes(path);
            // Declares no length and ends early: only the client's own length check can notice. Pieces can be shorter
            // than 1,000 bytes (a file's last piece), so at most half of one is cut.
            context.Response.SendChunked = true;
            await context.Response.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length - Math.Min(1000, bytes.Length / 2)));
            return FaultAction.Handled;
        };

        using var source = Source();
        await Patcher.UpdateAsync(_install, source, Options());
        AssertVersion(3);
        Assert.That(truncated, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public async Task UpdateAsync_ServerReturnsWrongBytes_FailsDownloadCorruptAndKeepsOldVersion()
    {
        await InstallV1();
        Publish(3);
        var before = Listing();
        string? bad = null;
        _server.Fault = async (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path)) return FaultAction.None;
            if (Interlocked.CompareExchange(ref bad, path, null) is { } chosen && chosen != path) return FaultAction.None;
            var bytes = _server.FileBytes(path);
            bytes[bytes.Length / 2] ^= 0xFF;
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            return FaultAction.Handled;
        };

        using var source = Source();
        var ex = await Fails(() => Patcher.UpdateAsync(_install, source, Options()));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.DownloadCorrupt));
        Assert.That(Listing(), Is.EqualTo(before));
        Assert.That(Patcher.Status(_install).InstalledVersion, Is.EqualTo("1.0.0"));
    }

    [Test]
    public async Task UpdateAsync_StoreMissingAPiece_FailsSourceObjectMissingAndKeepsOldVersion()
    {
        await InstallV1();
        Publish(3);
        var before = Listing();
        var v3Only = Directory.EnumerateFiles(Path.Join(_store, "pieces"), "*", SearchOption.AllDirectories)
            .OrderByDescending(File.GetLastWriteTimeUtc).First();
        File.Delete(v3Only);

        using var source = Source();
        var ex = await Fails(() => Patcher.UpdateAsync(_install, source, Options()));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.SourceObjectMissing));
        Assert.That(Listing(), Is.EqualTo(before));
    }

    [Test]
    public async Task CheckForUpdateAsync_ReplayedOlderPointer_RefusedChannelRollback()
    {
        Publish(1);
        var old = SavePointer();
        Publish(2);
        using var source = Source();
        Assert.That((await Patcher.CheckForUpdateAsync(_install, source, Options())).LatestVersion, Is.EqualTo("2.0.0"));
        await Patcher.UpdateAsync(_install, source, Options());
        var before = Listing();

        ReplayPointer(old);
        var check = await Fails(() => Patcher.CheckForUpdateAsync(_install, source, Options()));
        var update = await Fails(() => Patcher.UpdateAsync(_install, source, Options()));

        Assert.That(check.Code, Is.EqualTo(PatchErrorCode.ChannelRollback));
        Assert.That(update.Code, Is.EqualTo(PatchErrorCode.ChannelRollback));
        Assert.That(Listing(), Is.EqualTo(before));
    }

    [Test]
    public async Task UpdateAsync_ReplayedPointerOfAnInterruptedRun_RefusedBySequence()
    {
        // The client saw sequence 2 (v2) but did not install it: the replayed sequence-1 pointer names a version that is
        // still newer than nothing installed, so only the remembered sequence can refuse it.
        Publish(1);
        var old = SavePointer();
        Publish(2);
        File.Delete(Directory.EnumerateFiles(Path.Join(_store, "pieces"), "*", SearchOption.AllDirectories).First());
        using var source = Source();
        await Fails(() => Patcher.UpdateAsync(_install, source, Options()));

        ReplayPointer(old);
        var ex = await Fails(() => Patcher.UpdateAsync(_install, source, Options()));
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ChannelRollback));
    }

    [Test]
    public async Task CheckForUpdateAsync_ExpiredPointer_RefusedChannelExpired()
    {
        Publish(1, new FixedTimeProvider(DateTimeOffset.UtcNow.AddDays(-60)));
        using var source = Source();
        var ex = await Fails(() => Patcher.CheckForUpdateAsync(_install, source, Options()));
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.ChannelExpired));
        Assert.That(Directory.EnumerateFileSystemEntries(_install), Is.Empty);
    }

    [Test]
    public async Task CheckForUpdateAsync_PointerSignedByUntrustedKey_RefusedSignatureInvalid()
    {
        ReleaseStore.Publish(new PublishRequest
        {
            StoreDir = _store, TreeDir = Tree(1), Product = Product, Version = "1.0.0", PrivateKeyPem = File.ReadAllText(RepoPaths.TestKey2), Channel = "stable",
        });
        using var source = Source();
        var ex = await Fails(() => Patcher.CheckForUpdateAsync(_install, source, Options()));
        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.SignatureInvalid));
    }

    [Test]
    public async Task UpdateAsync_CancelledHalfwayThenResumed_FetchesAtMostOnePieceTwice()
    {
        Publish(3);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Downloading && p.FilesDone * 2 >= p.FilesTotal && p.FilesDone > 0) cts.Cancel();
        });
        using var source = Source();
        Assert.CatchAsync<OperationCanceledException>(() => Patcher.UpdateAsync(_install, source, Options(parallel: 1), progress, cts.Token));
        Assert.That(Directory.EnumerateFileSystemEntries(_install), Is.Empty, "nothing installed");
        var firstRun = _server.BlobRequests;

        var result = await Patcher.UpdateAsync(_install, source, Options(parallel: 1));

        Assert.That(Listing(), Is.EqualTo(HashListing.Text(Tree(3))));
        var pieces = result.PiecesDownloaded + result.PiecesReused;
        Assert.That(firstRun, Is.GreaterThan(0).And.LessThan(pieces));
        Assert.That(_server.BlobRequests, Is.LessThanOrEqualTo(pieces + 1), "at most one piece fetched twice");
        Assert.That(_server.RequestCounts.Where(kv => StoreServer.IsPiece(kv.Key)).Count(kv => kv.Value > 1), Is.LessThanOrEqualTo(1));
    }

    [Test]
    public async Task UpdateAsync_UpToDate_DownloadsNothing()
    {
        await InstallV1();
        var before = _server.BlobRequests;
        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());
        Assert.That(result.Status, Is.EqualTo(UpdateStatus.UpToDate));
        Assert.That(_server.BlobRequests, Is.EqualTo(before));
    }

    [Test]
    public async Task UpdateAsync_FromDirectorySource_UpdatesLikeHttp()
    {
        Publish(1);
        var source = new DirectorySource(_store);
        await Patcher.UpdateAsync(_install, source, Options());
        Publish(3);
        var result = await Patcher.UpdateAsync(_install, source, Options());
        Assert.That(result.Status, Is.EqualTo(UpdateStatus.Updated));
        Assert.That(Listing(), Is.EqualTo(HashListing.Text(Tree(3))));
    }

    [Test]
    public async Task RepairAsync_DamagedAndMissingFiles_FetchesOnlyTheirLostPiecesAndRestoresExactly()
    {
        await InstallV1();
        var big = Path.Join(_install, "data/b.pak");
        FlipBits(big, 400_000, 0x55);
        File.Delete(Path.Join(_install, "readme.txt"));
        var servedBefore = _server.BlobBytesServed;

        using var source = Source();
        var result = await Patcher.RepairAsync(_install, source, Options(fullRepair: true));

        AssertVersion(1);
        Assert.That(result.Repaired, Is.True);
        Assert.That(result.Missing, Is.EqualTo(new[] { "readme.txt" }));
        Assert.That(result.Modified, Is.EqualTo(new[] { "data/b.pak" }));
        Assert.That(result.PiecesDownloaded, Is.InRange(2, 3), "the damaged piece (or two, where the change moved a cut) and the deleted file");
        Assert.That(_server.BlobBytesServed - servedBefore, Is.EqualTo(result.BytesDownloaded).And.LessThan(2 * 256 * 1024 + 100));
    }

    [Test]
    public async Task RepairAsync_IntactInstall_DownloadsAndChangesNothing()
    {
        await InstallV1();
        var before = _server.RequestCounts.Values.Sum();
        using var source = Source();
        var result = await Patcher.RepairAsync(_install, source, Options());
        Assert.That(result.Repaired, Is.False);
        Assert.That(_server.RequestCounts.Values.Sum(), Is.EqualTo(before));
        AssertVersion(1);
    }

    [Test]
    public async Task UpdateAsync_ProcessKilledHalfwayThenResumed_FetchesAtMostOnePieceTwice()
    {
        var full = Publish(3);
        var killAt = full.Pieces / 2;
        var started = 0;
        System.Diagnostics.Process? child = null;
        var childError = "";
        _server.Fault = (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path) || Interlocked.Increment(ref started) != killAt) return Task.FromResult(FaultAction.None);
            child!.Kill(entireProcessTree: true);
            child.WaitForExit();
            context.Response.StatusCode = 503;
            return Task.FromResult(FaultAction.Handled);
        };

        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     Path.Join(TestContext.CurrentContext.TestDirectory, "patchtool.dll"), "update", "--source", _server.BaseUri.AbsoluteUri,
                     "--target", _install, "--trust", RepoPaths.TestPub, "--connections", "1",
                 })
            psi.ArgumentList.Add(arg);
        using (child = System.Diagnostics.Process.Start(psi)!)
        {
            var exited = child.WaitForExit(120_000);
            if (!exited) child.Kill(entireProcessTree: true);
            Assert.That(exited, Is.True, "the child ended (killed by the server hook)");
            childError = await child.StandardError.ReadToEndAsync();
            Assert.That(child.ExitCode, Is.Not.Zero, "the child was killed, it did not finish: " + childError);
        }

        Assert.That(Directory.EnumerateFileSystemEntries(_install), Is.Empty, "nothing installed by the killed run");
        Assert.That(_server.BlobRequests, Is.EqualTo(killAt), childError);
        _server.Fault = null;

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options(parallel: 1));

        Assert.That(Listing(), Is.EqualTo(HashListing.Text(Tree(3))));
        Assert.That(result.PiecesReused, Is.EqualTo(killAt - 1), "every piece verified before the kill is kept");
        Assert.That(_server.BlobRequests, Is.EqualTo(full.Pieces + 1), "only the piece in flight at the kill is fetched twice");
    }

    [Test]
    public async Task UpdateAsync_SlowServerOnFirstTry_AbandonsThatRequestAtItsTimeoutAndUpdates()
    {
        await InstallV1();
        Publish(3);
        string? slow = null;
        _server.Fault = async (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path) || n != 1 || Interlocked.CompareExchange(ref slow, path, null) is not null) return FaultAction.None;
            // A correct answer, but late: a client that waited for it would ask once; one that timed out asks again.
            await Task.Delay(TimeSpan.FromSeconds(3));
            var bytes = _server.FileBytes(path);
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            return FaultAction.Handled;
        };

        using var source = new HttpSource(_server.BaseUri, new HttpSourceOptions { MaxAttempts = 3, RetryDelay = TimeSpan.FromMilliseconds(5), RequestTimeout = TimeSpan.FromMilliseconds(500) });
        await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        Assert.That(_server.Requests(slow!), Is.EqualTo(2), "the slow request was abandoned at its timeout and asked again");
    }

    [Test]
    public async Task UpdateAsync_Progress_ReportsDownloadingBytesUpToWhatWasFetchedThenTheTransaction()
    {
        await InstallV1();
        Publish(3);
        var reports = new List<PatchProgress>();
        var progress = new SyncProgress(p =>
        {
            lock (reports) reports.Add(p);
        });

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options(), progress);

        var downloading = reports.Where(r => r.Phase == PatchPhase.Downloading).ToList();
        Assert.That(downloading, Is.Not.Empty);
        Assert.That(downloading.Select(r => r.BytesTotal).Distinct(), Is.EqualTo(new[] { result.BytesDownloaded }));
        Assert.That(downloading.Max(r => r.BytesDone), Is.EqualTo(result.BytesDownloaded));
        Assert.That(downloading.Max(r => r.FilesDone), Is.EqualTo(result.PiecesDownloaded));
        var firstStaging = reports.FindIndex(r => r.Phase == PatchPhase.Staging);
        Assert.That(firstStaging, Is.GreaterThan(reports.FindLastIndex(r => r.Phase == PatchPhase.Downloading)), "every download ends before the transaction stages");
    }

    [Test]
    public async Task UpdateAsync_CancelledWhileDownloadingOverAnInstall_LeavesTheOldVersionExactly()
    {
        await InstallV1();
        Publish(3);
        var before = Listing();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Downloading && p.FilesDone >= 1) cts.Cancel();
        });

        using var source = Source();
        Assert.CatchAsync<OperationCanceledException>(() => Patcher.UpdateAsync(_install, source, Options(parallel: 1), progress, cts.Token));

        Assert.That(Listing(), Is.EqualTo(before));
        Assert.That(Patcher.Status(_install).InstalledVersion, Is.EqualTo("1.0.0"));
    }

    [Test]
    public async Task RepairAsync_QuickByDefault_FindsDeletedAndTruncatedFilesWithoutHashing()
    {
        await InstallV1();
        File.Delete(Path.Join(_install, "readme.txt"));
        using (var s = new FileStream(Path.Join(_install, "data/a.pak"), FileMode.Open)) s.SetLength(100_000);
        var flipped = Path.Join(_install, "data/b.pak");
        FlipBits(flipped, 10, 0x01);

        using var source = Source();
        var result = await Patcher.RepairAsync(_install, source, Options());

        Assert.That(result.Missing, Is.EqualTo(new[] { "readme.txt" }));
        Assert.That(result.Modified, Is.EqualTo(new[] { "data/a.pak" }), "sizes only, no content read: the same-size change in b.pak is not seen by the check");
        // Once a repair runs, every piece it places is verified, so b.pak's changed piece is fetched and put back too.
        AssertVersion(1);
    }

    [Test]
    public async Task RepairAsync_Full_FindsSameSizeFlippedByteThatQuickMisses()
    {
        await InstallV1();
        var flipped = Path.Join(_install, "data/b.pak");
        FlipBits(flipped, 10, 0x01);
        using var source = Source();
        var requests = _server.RequestCounts.Values.Sum();

        var quick = await Patcher.RepairAsync(_install, source, Options());
        Assert.That(quick.Repaired, Is.False, "the size is right, so the quick check sees nothing");
        Assert.That(_server.RequestCounts.Values.Sum(), Is.EqualTo(requests), "nothing asked of the store");

        var full = await Patcher.RepairAsync(_install, source, Options(fullRepair: true));
        Assert.That(full.Modified, Is.EqualTo(new[] { "data/b.pak" }));
        AssertVersion(1);
    }

    /// <summary>A tree whose files compress well (text), as most game data besides media does.</summary>
    private string TextTree(int version)
    {
        var dir = _temp["text/v" + version];
        if (Directory.Exists(dir)) return dir;
        var random = new Random(7);
        var words = Enumerable.Range(0, 500).Select(i => "word" + random.Next(100_000)).ToArray();
        for (var f = 0; f < 4; f++)
        {
            var text = new System.Text.StringBuilder();
            while (text.Length < 400_000) text.Append(words[random.Next(words.Length)]).Append(random.Next(10) == 0 ? '\n' : ' ');
            if (version >= 2 && f == 1) text.Insert(200_000, "a line added in version 2\n");
            TreeFactory.WriteFile(dir, $"text/{f}.txt", System.Text.Encoding.UTF8.GetBytes(text.ToString()));
        }

        return dir;
    }

    [Test]
    public async Task UpdateAsync_CompressibleContent_DownloadsZstdFramesSmallerThanTheContent()
    {
        var published = ReleaseStore.Publish(new PublishRequest
        {
            StoreDir = _store, TreeDir = TextTree(1), Product = Product, Version = "1.0.0", PrivateKeyPem = Key, Channel = "stable", Level = 3,
        });

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        Assert.That(HashListing.Text(_install), Is.EqualTo(HashListing.Text(TextTree(1))));
        Assert.That(result.BytesDownloaded, Is.EqualTo(published.StoredBytes).And.EqualTo(_server.BlobBytesServed));
        Assert.That(result.BytesDownloaded, Is.LessThan(published.TotalBytes / 2), $"{result.BytesDownloaded} bytes fetched for {published.TotalBytes} of content");
        Assert.That(_server.RequestCounts.Keys.Where(StoreServer.IsPiece).All(k => k.StartsWith("pieces/", StringComparison.Ordinal) && k.EndsWith(".zst", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public async Task UpdateAsync_PieceFrameDecodingPastItsSize_FailsDownloadCorruptWithBoundedOutput()
    {
        await InstallV1();
        Publish(3);
        var before = Listing();
        _server.Fault = async (context, path, n) =>
        {
            if (!StoreServer.IsPiece(path)) return FaultAction.None;
            // A frame of 64 MiB of zeros, padded with a skippable frame to the stored size the signed index declares.
            var stored = _server.FileBytes(path).Length;
            var bomb = Patching.Deltas.ZstdPatch.Compress(default, new byte[64 * 1024 * 1024], 19);
            var frame = new byte[stored];
            bomb.CopyTo(frame, 0);
            BitConverter.GetBytes(0x184D2A50u).CopyTo(frame, bomb.Length);
            BitConverter.GetBytes((uint)(stored - bomb.Length - 8)).CopyTo(frame, bomb.Length + 4);
            context.Response.ContentLength64 = frame.Length;
            await context.Response.OutputStream.WriteAsync(frame);
            return FaultAction.Handled;
        };

        using var source = Source();
        var ex = await Fails(() => Patcher.UpdateAsync(_install, source, Options(parallel: 1)));

        Assert.That(ex.Code, Is.EqualTo(PatchErrorCode.DownloadCorrupt));
        Assert.That(Listing(), Is.EqualTo(before));
    }

    /// <summary>Turns the store into one written before pieces were compressed: raw pieces under blobs/, no indexes.</summary>
    private void MakeRawStore()
    {
        foreach (var manifestPath in Directory.EnumerateFiles(Path.Join(_store, "versions"), "manifest.json", SearchOption.AllDirectories))
        {
            foreach (var blob in Patching.Manifests.ManifestCodec.Deserialize(File.ReadAllBytes(manifestPath)).Blobs)
            {
                var frame = File.ReadAllBytes(Path.Join(_store, Patching.Sources.SourceNames.Piece(blob.Sha256)));
                TreeFactory.WriteFile(_store, Patching.Sources.SourceNames.Blob(blob.Sha256), Patching.Deltas.ZstdPatch.Decompress(default, frame, (int)blob.Size, "piece").ToArray());
            }
        }

        Directory.Delete(Path.Join(_store, "pieces"), recursive: true);
        foreach (var index in Directory.EnumerateFiles(Path.Join(_store, "versions"), "index.*", SearchOption.AllDirectories)) File.Delete(index);
    }

    [Test]
    public async Task UpdateAsync_StoreWithRawPiecesAndNoIndex_StillUpdatesFromBlobs()
    {
        await InstallV1();
        Publish(3);
        MakeRawStore();
        var served = _server.BlobBytesServed;
        var frames = _server.RequestCounts.Where(kv => kv.Key.StartsWith("pieces/", StringComparison.Ordinal)).Sum(kv => kv.Value);

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        Assert.That(_server.BlobBytesServed - served, Is.EqualTo(result.BytesDownloaded).And.GreaterThan(0));
        Assert.That(_server.RequestCounts.Where(kv => kv.Key.StartsWith("pieces/", StringComparison.Ordinal)).Sum(kv => kv.Value), Is.EqualTo(frames), "no frame asked of a store without indexes");
    }

    /// <summary>Stored bytes of the pieces of <paramref name="to"/> that <paramref name="from"/> lacks: what the pieces route fetches over an intact install.</summary>
    private long PiecesCost(string from, string to)
    {
        var had = Patching.Manifests.ManifestCodec.Deserialize(File.ReadAllBytes(Path.Join(_store, $"versions/{from}/manifest.json"))).Blobs.Select(b => b.Sha256).ToHashSet();
        var index = StoreIndex.Parse(File.ReadAllBytes(Path.Join(_store, $"versions/{to}/index.json")), "index");
        return index.Pieces.Where(p => !had.Contains(p.Sha256)).Sum(p => p.StoredSize);
    }

    [Test]
    public async Task UpdateAsync_DeltaButInstallDamaged_FallsBackToPiecesAndEndsExactlyNew()
    {
        await InstallV1();
        Publish(2, deltaFrom: 1);
        var a = Path.Join(_install, "data/a.pak");
        FlipBits(a, 10, 0xFF);   // a size-preserving change in a range the delta copies from the base

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(2);
        Assert.That(result.DeltaFrom, Is.Null, "the delta's base check refused the damaged file; the pieces route rebuilt it");
        Assert.That(result.PiecesDownloaded, Is.GreaterThan(0));
    }

    [TestCase(2)]
    [TestCase(3)]
    public async Task UpdateAsync_DeltasFromInstalledVersionCheaperThanPieces_AppliesEachAndFetchesTheirSum(int latest)
    {
        await InstallV1();
        long deltas = 0;
        for (var v = 2; v <= latest; v++) deltas += Publish(v, deltaFrom: v - 1).DeltaBytes!.Value;
        var served = _server.BlobBytesServed;
        var pieceRequests = _server.BlobRequests;

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(latest);
        Assert.That(result.DeltaFrom, Is.EqualTo("1.0.0"));
        Assert.That(result.BytesDownloaded, Is.EqualTo(deltas).And.EqualTo(_server.BlobBytesServed - served));
        Assert.That(_server.BlobRequests, Is.EqualTo(pieceRequests), "no piece fetched");
        var pieces = PiecesCost("1.0.0", $"{latest}.0.0");
        Assert.That(result.BytesDownloaded, Is.LessThan(pieces));
        TestContext.Progress.WriteLine($"1.0.0 -> {latest}.0.0 through deltas: {result.BytesDownloaded} bytes; the pieces would have cost {pieces}");
    }

    [Test]
    public async Task UpdateAsync_DeltaDownloadCancelledThenResumed_FetchesNoPayloadRangeTwice()
    {
        await InstallV1();
        var large = new byte[3_000_000];
        new Random(9).NextBytes(large);
        TreeFactory.WriteFile(Tree(2), "data/large.bin", large);   // a payload of several 1 MiB ranges
        var published = Publish(2, deltaFrom: 1);
        var before = Listing();
        var served = _server.BlobBytesServed;
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Downloading && p.BytesDone >= 1024 * 1024) cts.Cancel();
        });

        using var source = Source();
        Assert.CatchAsync<OperationCanceledException>(() => Patcher.UpdateAsync(_install, source, Options(), progress, cts.Token));
        Assert.That(Listing(), Is.EqualTo(before));
        var firstRun = _server.BlobBytesServed - served;

        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(2);
        Assert.That(result.DeltaFrom, Is.EqualTo("1.0.0"));
        Assert.That(firstRun, Is.GreaterThan(1024 * 1024), "the first run got a range or more of the payload");
        Assert.That(result.BytesDownloaded, Is.EqualTo(published.DeltaBytes - firstRun), "the resumed run fetched only what the first one had not");
        Assert.That(_server.BlobBytesServed - served, Is.EqualTo(published.DeltaBytes));
    }

    [Test]
    public async Task UpdateAsync_SecondDeltaOfAChainServedWrong_CommitsTheFirstThenTakesPiecesToTheLatest()
    {
        await InstallV1();
        Publish(2, deltaFrom: 1);
        Publish(3, deltaFrom: 2);
        _server.Fault = async (context, path, n) =>
        {
            if (path != "versions/3.0.0/deltas/2.0.0/payload.bin") return FaultAction.None;
            var bytes = _server.FileBytes(path);
            var range = context.Request.Headers["Range"]!["bytes=".Length..].Split('-').Select(long.Parse).ToArray();
            var body = bytes.AsSpan((int)range[0], (int)(range[1] - range[0] + 1)).ToArray();
            for (var i = 0; i < body.Length; i += 7) body[i] ^= 0x5A;   // wrong bytes of the right length: only decoding can tell
            context.Response.StatusCode = 206;
            context.Response.ContentLength64 = body.Length;
            await context.Response.OutputStream.WriteAsync(body);
            return FaultAction.Handled;
        };

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        Assert.That(result.DeltaFrom, Is.Null, "the chain did not finish");
        Assert.That(result.PiecesDownloaded, Is.GreaterThan(0));
        Assert.That(_server.Requests("versions/2.0.0/deltas/1.0.0/payload.bin"), Is.GreaterThan(0), "the first step went through its delta");
    }

    [Test]
    public async Task UpdateAsync_DeltaChainNotStartingAtTheInstalledVersion_UsesPieces()
    {
        await InstallV1();
        Publish(2);
        Publish(3, deltaFrom: 2);
        var before = _server.RequestCounts.Keys.Count(StoreServer.IsDelta);

        using var source = Source();
        var result = await Patcher.UpdateAsync(_install, source, Options());

        AssertVersion(3);
        Assert.That(result.DeltaFrom, Is.Null);
        Assert.That(_server.RequestCounts.Keys.Count(StoreServer.IsDelta), Is.EqualTo(before));
    }
}
