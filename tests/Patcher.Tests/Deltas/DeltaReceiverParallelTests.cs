using System.IO.Hashing;
using System.Security.Cryptography;
using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>
/// One content of many operations produced several at once: a file edited in four regions, each region a copy served
/// from the next delta's reference window, two deltas decoded against that window, a copy inside it, a copy of another
/// base file outside any window and a frame shipped whole. The receiver is told that every content is large enough.
/// </summary>
public sealed class DeltaReceiverParallelTests
{
    private const int Window = 256 * 1024;
    private const int Regions = 4;
    private const int OpsPerRegion = 6;

    [Test]
    public void Write_ManyOperations_ProducesSeveralAtOnceAndWritesTheExactBytesInOrder()
    {
        using var temp = TempDir.ForCurrentTest();
        var g = Game.Create(temp.Dir("install"));
        var probe = new ConcurrencyProbe();
        var written = new List<long>();

        using var output = new MemoryStream();
        using (var receiver = g.Receiver(probe.Watch))
        {
            receiver.Write(g.Recipe, output, written.Add, CancellationToken.None);
        }

        Assert.That(output.ToArray(), Is.EqualTo(g.Expected));
        Assert.That(written, Is.EqualTo(g.Recipe.Ops.Select(o => o.Length)), "bytes reported operation by operation, in order");
        Assert.That(probe.Most, Is.GreaterThanOrEqualTo(2), "frames of one content were decoded at once");
    }

    [Test]
    public void Write_OnASchedulerOfOneTaskAtATime_ProducesOneOperationAtATime()
    {
        using var temp = TempDir.ForCurrentTest();
        var g = Game.Create(temp.Dir("install"));
        var probe = new ConcurrencyProbe(TimeSpan.FromMilliseconds(300));

        using var output = new MemoryStream();
        using (var receiver = g.Receiver(probe.Watch))
        {
            SerialScheduler.Run(() => receiver.Write(g.Recipe, output, null, CancellationToken.None));
        }

        Assert.That(output.ToArray(), Is.EqualTo(g.Expected));
        Assert.That(probe.Most, Is.EqualTo(1));
    }

    /// <summary>The copies are served from the windows the deltas read: each region of a.bin is read once, b.bin once per copy.</summary>
    [Test]
    public void Write_ManyOperations_ReadsEachReferenceOnce()
    {
        using var temp = TempDir.ForCurrentTest();
        var g = Game.Create(temp.Dir("install"));
        var fs = new CountingFileOps(FileOps.Instance);

        using var output = new MemoryStream();
        using (var receiver = g.Receiver(null, fs))
        {
            receiver.Write(g.Recipe, output, null, CancellationToken.None);
        }

        Assert.That(output.ToArray(), Is.EqualTo(g.Expected));
        Assert.That(fs.Reads(Path.Join(g.Install, "a.bin")), Is.EqualTo(Regions), "one read of each window, shared by its two deltas and two copies");
        Assert.That(fs.Reads(Path.Join(g.Install, "b.bin")), Is.EqualTo(Regions));
    }

    /// <summary>A frame in the middle decodes to garbage: its error, as a one-at-a-time apply reports it, and only the operations before it written.</summary>
    [Test]
    public void Write_HostileFrameInTheMiddle_SameErrorAsOneAtATimeAndNothingAfterItWritten()
    {
        using var temp = TempDir.ForCurrentTest();
        var broken = (2 * OpsPerRegion) + 2; // the second delta of region 2
        var g = Game.Create(temp.Dir("install"), corruptFrameOf: broken);

        var (parallel, parallelOut, parallelBytes) = Failing(g, serial: false);
        var (serial, serialOut, _) = Failing(g, serial: true);

        Assert.That(parallel.Code, Is.EqualTo(PatchErrorCode.DeltaCorrupt).Or.EqualTo(PatchErrorCode.DeltaOutputMismatch));
        Assert.That((parallel.Code, parallel.Message), Is.EqualTo((serial.Code, serial.Message)));
        Assert.That(parallelOut, Is.EqualTo(g.Expected.AsSpan(0, g.OffsetOf(broken)).ToArray()), "the operations before it, nothing after");
        Assert.That(serialOut, Is.EqualTo(parallelOut));
        Assert.That(parallelBytes, Is.EqualTo(g.Recipe.Ops.Take(broken).Select(o => o.Length)));
    }

    /// <summary>
    /// A damaged base range in the middle: in b.bin (read by a copy) or in a window of a.bin no copy reads (read by the
    /// deltas). Where the patch ships the same output whole it is decoded instead; else <see cref="PatchErrorCode.BaseMismatch"/>
    /// naming the file, with only the operations before the first that needs the range written.
    /// </summary>
    [TestCase("b.bin", true)]
    [TestCase("b.bin", false)]
    [TestCase("a.bin", true)]
    [TestCase("a.bin", false)]
    public void Write_DamagedBaseRangeInTheMiddle_FallsBackToShippedElseBaseMismatchWithNothingAfterIt(string file, bool shipped)
    {
        using var temp = TempDir.ForCurrentTest();
        // Region 2 either way: b.bin's copy (operation 4 of the region), or a.bin's window outside its copies (the first delta, operation 1).
        var failing = file == "b.bin" ? (2 * OpsPerRegion) + 4 : (2 * OpsPerRegion) + 1;
        var damageAt = file == "b.bin" ? (2 * 65536) + 10 : (2 * Window) + (200 * 1024);
        int[] needing = file == "b.bin" ? [failing] : [failing, failing + 1]; // both deltas of the region read the window
        var g = Game.Create(temp.Dir("install"), damage: (file, damageAt), shipOutputOf: shipped ? needing : []);

        if (shipped)
        {
            using var output = new MemoryStream();
            using var receiver = g.Receiver(null);
            receiver.Write(g.Recipe, output, null, CancellationToken.None);
            Assert.That(output.ToArray(), Is.EqualTo(g.Expected), "the shipped output replaced what the damaged range would give");
            return;
        }

        var (parallel, parallelOut, _) = Failing(g, serial: false);
        var (serial, serialOut, _) = Failing(g, serial: true);
        Assert.That(parallel.Code, Is.EqualTo(PatchErrorCode.BaseMismatch));
        Assert.That(parallel.Message, Does.Contain($"'{file}'"));
        Assert.That(parallel.Message, Is.EqualTo(serial.Message));
        Assert.That(parallelOut, Is.EqualTo(g.Expected.AsSpan(0, g.OffsetOf(failing)).ToArray()));
        Assert.That(serialOut, Is.EqualTo(parallelOut));
    }

    /// <summary>
    /// Continued after a recorded prefix of five operations: the resume hook sees, after each later operation but the
    /// last, the prefix of exactly the operations written so far, and the output then holds exactly those bytes.
    /// </summary>
    [Test]
    public void Write_ContinuedAfterAPrefix_AfterOpSeesEachWrittenPrefixInOrder()
    {
        using var temp = TempDir.ForCurrentTest();
        var g = Game.Create(temp.Dir("install"));
        const int resumedOps = 5;
        var resumedLength = g.OffsetOf(resumedOps);
        using var output = new MemoryStream();
        output.Write(g.Expected, 0, resumedLength);
        using var prefix = new ContentPrefix();
        prefix.Append(g.Expected.AsSpan(0, resumedLength));
        prefix.Completed(resumedOps);
        var seen = new List<(int Ops, long Length, long Written, bool SameHash)>();

        using (var receiver = g.Receiver(null))
        {
            receiver.Write(g.Recipe, output, prefix, p =>
            {
                var bytes = output.ToArray();
                seen.Add((p.Ops, p.Length, bytes.Length, XxHash128.Hash(bytes).AsSpan().SequenceEqual(p.XxHash128)));
            }, null, CancellationToken.None);
        }

        var count = g.Recipe.Ops.Count;
        var expected = Enumerable.Range(resumedOps + 1, count - resumedOps - 1).Select(n => (n, (long)g.OffsetOf(n), (long)g.OffsetOf(n), true));
        Assert.That(seen, Is.EqualTo(expected));
        Assert.That(output.ToArray(), Is.EqualTo(g.Expected));
        Assert.That(prefix.Sha256, Is.EqualTo(g.Recipe.Sha256));
    }

    /// <summary>Cancelled after the third operation is written: no more is written, and nothing still runs once Write has thrown.</summary>
    [Test]
    public void Write_CancelledMidway_ThrowsAndNothingRunsAfter()
    {
        using var temp = TempDir.ForCurrentTest();
        var g = Game.Create(temp.Dir("install"));
        var frames = 0;
        using var cts = new CancellationTokenSource();
        var written = new List<long>();
        using var output = new MemoryStream();
        using var receiver = g.Receiver(_ => Interlocked.Increment(ref frames));

        Assert.That(() => receiver.Write(g.Recipe, output, n =>
        {
            written.Add(n);
            if (written.Count == 3) cts.Cancel();
        }, cts.Token), Throws.InstanceOf<OperationCanceledException>());

        var framesAtReturn = Volatile.Read(ref frames);
        Thread.Sleep(200);
        Assert.That(written, Has.Count.EqualTo(3));
        Assert.That(output.ToArray(), Is.EqualTo(g.Expected.AsSpan(0, g.OffsetOf(3)).ToArray()));
        Assert.That(receiver.Produced.Ops, Is.EqualTo(3));
        Assert.That(Volatile.Read(ref frames), Is.EqualTo(framesAtReturn), "no operation ran on after Write returned");
        Assert.That(framesAtReturn, Is.LessThan(g.Recipe.Ops.Count(o => o.Kind == DeltaOpKind.Data)));
    }

    private static (PatcherException Error, byte[] Output, List<long> Written) Failing(Game g, bool serial)
    {
        using var output = new MemoryStream();
        using var receiver = g.Receiver(null);
        var written = new List<long>();
        void Run() => receiver.Write(g.Recipe, output, written.Add, CancellationToken.None);
        var ex = Assert.Throws<PatcherException>(() =>
        {
            if (serial) SerialScheduler.Run(Run);
            else Run();
        });
        return (ex!, output.ToArray(), written);
    }

    /// <summary>Counts the frames being read at once; the first reader waits (up to a limit) for a second, so overlap is seen if it can happen.</summary>
    private sealed class ConcurrencyProbe(TimeSpan? wait = null)
    {
        private readonly ManualResetEventSlim _overlapped = new();
        private int _now;
        private int _most;
        private int _waited;

        public int Most => Volatile.Read(ref _most);

        public void Watch(DeltaOp op)
        {
            var now = Interlocked.Increment(ref _now);
            for (int most; (most = Volatile.Read(ref _most)) < now;) Interlocked.CompareExchange(ref _most, now, most);
            if (now >= 2) _overlapped.Set();
            if (Interlocked.Exchange(ref _waited, 1) == 0) _overlapped.Wait(wait ?? TimeSpan.FromSeconds(10));
            Interlocked.Decrement(ref _now);
        }
    }

    private sealed record Game(string Install, ContentRecipe Recipe, byte[] Expected, Manifest Manifest, byte[] Payload)
    {
        public DeltaReceiver Receiver(Action<DeltaOp>? onReadFrame, IFileOps? fs = null)
        {
            var walk = TreeOps.Walk(FileOps.Instance, Install).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);
            return new DeltaReceiver(fs ?? FileOps.Instance, Install, new FakeDeltaSource(Manifest, Payload) { OnReadFrame = onReadFrame }, walk) { ParallelFromBytes = 0 };
        }

        public int OffsetOf(int op) => (int)Recipe.Ops.Take(op).Sum(o => o.Length);

        public static Game Create(string install, int corruptFrameOf = -1, (string File, int At)? damage = null, int[]? shipOutputOf = null)
        {
            var a = Format2ApplyTests.Noise(51, Regions * Window);
            var b = Format2ApplyTests.Noise(52, Regions * 65536);
            var payload = new MemoryStream();
            var ops = new List<DeltaOp>();
            var expected = new MemoryStream();

            DeltaOp Data(byte[] output, byte[] reference, RefWindow? window)
            {
                var frame = ZstdPatch.Compress(reference, output, 3);
                var op = new DeltaOp
                {
                    Kind = DeltaOpKind.Data, Length = output.Length, Sha256 = Sha(output), PayloadOffset = payload.Length, StoredLength = frame.Length,
                    Refs = window is null ? [] : [window],
                };
                payload.Write(frame);
                return op;
            }

            void Add(DeltaOp op, ReadOnlySpan<byte> output)
            {
                ops.Add(op);
                expected.Write(output);
            }

            void Copy(string path, byte[] of, int at, int length) =>
                Add(new DeltaOp { Kind = DeltaOpKind.Copy, Length = length, Sha256 = Sha(of.AsSpan(at, length)), BasePath = path, BaseOffset = at }, of.AsSpan(at, length));

            for (var k = 0; k < Regions; k++)
            {
                var start = k * Window;
                var reference = a.AsSpan(start, Window).ToArray();
                var window = new RefWindow("a.bin", start, Window, Sha(reference));
                Copy("a.bin", a, start, 65536);
                foreach (var (at, seed) in new[] { (65536, 100 + k), (96 * 1024, 200 + k) })
                {
                    var edited = reference.AsSpan(at, 32 * 1024).ToArray();
                    var noise = Format2ApplyTests.Noise(seed, 512);
                    noise.CopyTo(edited, 1000);
                    Add(Data(edited, reference, window), edited);
                }

                Copy("a.bin", a, start + (128 * 1024), 65536);
                Copy("b.bin", b, k * 65536, 65536);
                var fresh = Format2ApplyTests.Noise(300 + k, 16 * 1024);
                Add(Data(fresh, [], null), fresh);
            }

            var shipped = new List<ContentRecipe>();
            var bytes = expected.ToArray();
            var recipe = new ContentRecipe { Sha256 = Sha(bytes), Size = bytes.Length, Ops = ops };
            var g = new Game(install, recipe, bytes, null!, null!);
            foreach (var i in shipOutputOf ?? [])
            {
                var output = bytes.AsSpan(g.OffsetOf(i), (int)ops[i].Length).ToArray();
                var plain = Data(output, [], null);
                shipped.Add(new ContentRecipe { Sha256 = plain.Sha256, Size = plain.Length, Ops = [plain] });
            }

            var frames = payload.ToArray();
            if (corruptFrameOf >= 0)
            {
                var op = ops[corruptFrameOf];
                for (var i = 8; i < op.StoredLength; i += 7) frames[op.PayloadOffset + i] ^= 0x5A;
            }

            if (damage is { } d) (d.File == "a.bin" ? a : b)[d.At] ^= 0xFF;
            File.WriteAllBytes(Path.Join(install, "a.bin"), a);
            File.WriteAllBytes(Path.Join(install, "b.bin"), b);
            var manifest = new Manifest
            {
                Format = 2, Product = "demo-game", Version = "2", FromVersion = "1", Created = DateTimeOffset.UnixEpoch, Directories = [],
                Files = [TargetFile.Whole("game.pak", bytes.Length, recipe.Sha256)],
                Base =
                [
                    new BaseFile { Path = "a.bin", Size = a.Length, Sha256 = Sha(a) },
                    new BaseFile { Path = "b.bin", Size = b.Length, Sha256 = Sha(b) },
                ],
                Blobs = [],
                Recipes = [recipe, .. shipped],
                PayloadSize = frames.Length,
            };
            return g with { Manifest = manifest, Payload = frames };
        }
    }

    private static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
