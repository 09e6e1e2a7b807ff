using System.Buffers;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Deltas;

/// <summary>Hash checks shared by the receiver and <c>patchtool verify</c>.</summary>
internal static class DeltaChecks
{
    /// <summary>Throws <see cref="PatchErrorCode.DeltaOutputMismatch"/> unless <paramref name="bytes"/> hash to <paramref name="sha256"/>.</summary>
    public static void Expect(ReadOnlySpan<byte> bytes, string sha256, string what)
    {
        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != sha256)
            throw new PatcherException(PatchErrorCode.DeltaOutputMismatch, $"{what} produced bytes with SHA-256 {actual}, the manifest signs {sha256}", what);
    }
}

/// <summary>
/// What the first <see cref="Ops"/> operations of a content wrote: <see cref="Length"/> bytes, hashed as they were
/// written (or read back when a partial file is resumed) with SHA-256 (checked against the signed hash when the
/// content is complete) and XxHash128 (the journal's cheap fingerprint of a verified prefix, <c>ContentProgress</c>).
/// </summary>
internal sealed class ContentPrefix(bool sha256 = true) : IDisposable
{
    // Without it: a content of one data operation whose own signed hash is the content's, checked as it is decoded.
    private readonly IncrementalHash? _sha256 = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
    private readonly XxHash128 _xx = new();

    public int Ops { get; private set; }

    public long Length { get; private set; }

    /// <summary>Hashes bytes that are already in the output, without counting an operation.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        _sha256?.AppendData(bytes);
        _xx.Append(bytes);
        Length += bytes.Length;
    }

    /// <summary>Counts the operations the appended bytes came from (a resumed prefix, or one operation just written).</summary>
    public void Completed(int ops) => Ops += ops;

    public byte[] XxHash128 => _xx.GetCurrentHash();

    /// <summary>The SHA-256 of the bytes so far; null when this prefix was made without it.</summary>
    public string? Sha256 => _sha256 is null ? null : Convert.ToHexStringLower(_sha256.GetCurrentHash());

    public void Dispose() => _sha256?.Dispose();
}

/// <summary>
/// Rebuilds format 2 contents from the install (the base) and the patch's payload. Every operation's output is
/// held in memory (at most <see cref="DeltaLimits.MaxDataLength"/> bytes), checked against its signed SHA-256 and only
/// then written; a reference window is read and checked against its signed SHA-256 before it is decoded against.
/// Each frame is decoded once: the bytes hashed are the bytes written. Base files are read only where the plan's walk
/// saw a regular file of the declared size (never through a symlink), and a base range that hashes otherwise is
/// <see cref="PatchErrorCode.BaseMismatch"/> naming the file, unless the patch ships the same output without a
/// reference (another operation's frame), which is then decoded instead. The payload is opened once, at the first
/// frame, and closed with the receiver. A content may be continued after a verified prefix (<see cref="ContentPrefix"/>):
/// the operations that wrote it are not run again.
/// </summary>
internal sealed partial class DeltaReceiver(IFileOps fs, string installDir, IDeltaSource package, IReadOnlyDictionary<string, EntryInfo> walk) : IDisposable
{
    private readonly Dictionary<string, BaseFile> _base = package.Manifest.Base.ToDictionary(b => b.Path, StringComparer.Ordinal);
    private readonly Lazy<IFrameReader> _frames = new(package.OpenFrames, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Outputs the patch ships without a reference, by SHA-256 and length: what a damaged base region falls back to.</summary>
    private readonly Lazy<Dictionary<(string, long), DeltaOp>> _shipped = new(() =>
    {
        var shipped = new Dictionary<(string, long), DeltaOp>();
        foreach (var op in package.Manifest.Recipes.SelectMany(r => r.Ops).Where(o => o.Kind == DeltaOpKind.Data && o.Refs.Count == 0))
            shipped.TryAdd((op.Sha256, op.Length), op);
        return shipped;
    });

    public void Dispose()
    {
        if (_frames.IsValueCreated) _frames.Value.Dispose();
    }

    private long _opsRun;
    private long _bytesRun;
    private int _pooled;

    /// <summary>
    /// Runs of operations of one content produced at once, and pooled runs of all contents together: with more, a large
    /// file's runs would wait on the cores anyway while each held up to 16 MiB of output and a reference (docs/decisions.md).
    /// </summary>
    internal static readonly int OpsInFlight = Math.Clamp(Environment.ProcessorCount, 2, 4);

    /// <summary>
    /// Contents with fewer bytes left to write are produced one operation at a time on the writing thread: below a
    /// single operation's maximum there is little to share, and a tree of small files already keeps every core busy.
    /// </summary>
    internal const long DefaultParallelFromBytes = DeltaLimits.MaxDataLength;

    /// <summary>
    /// The threshold a receiver uses. Only a process that opted in to the crash-test hooks (<see cref="CrashInjection.OptInSwitch"/>)
    /// may lower it with <c>PATCHER_TEST_PARALLEL_FROM_BYTES</c>, so that a small test patch is produced several operations at once.
    /// </summary>
    internal static long ConfiguredParallelFromBytes { get; } =
        AppContext.TryGetSwitch(CrashInjection.OptInSwitch, out var on) && on &&
        long.TryParse(Environment.GetEnvironmentVariable("PATCHER_TEST_PARALLEL_FROM_BYTES"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : DefaultParallelFromBytes;

    internal long ParallelFromBytes { get; init; } = ConfiguredParallelFromBytes;

    /// <summary>Operations this receiver ran (decoded or copied from the base), and the bytes they produced.</summary>
    public (long Ops, long Bytes) Produced => (Interlocked.Read(ref _opsRun), Interlocked.Read(ref _bytesRun));

    /// <summary>
    /// Writes recipe <paramref name="recipe"/> to <paramref name="output"/>, operation by operation, and checks the whole
    /// against the content's SHA-256. <paramref name="onBytes"/> is told of each operation's bytes once written.
    /// </summary>
    public void Write(ContentRecipe recipe, Stream output, Action<long>? onBytes, CancellationToken ct)
    {
        using var prefix = new ContentPrefix(sha256: WholeCheckNeeded(recipe));
        Write(recipe, output, prefix, null, onBytes, ct);
    }

    /// <summary>
    /// Writes the operations of <paramref name="recipe"/> after the <paramref name="prefix"/> already in
    /// <paramref name="output"/>, appending each to the prefix; <paramref name="afterOp"/> sees the prefix after each
    /// operation but the last. The whole content (prefix included) is checked against its SHA-256.
    /// </summary>
    /// <remarks>
    /// A large content's operations are produced (read, decoded, checked) on the thread pool, in runs of consecutive
    /// operations (<see cref="RunEnd"/>), at most <see cref="OpsInFlight"/> runs at once, while this thread writes the
    /// finished operations in order: the output, the prefix's hashes, <paramref name="onBytes"/> and
    /// <paramref name="afterOp"/> see exactly what a one-by-one loop would, and the first operation in order that fails
    /// is the error thrown, with nothing after it written. Small contents, and callers on a scheduler that admits one
    /// task at a time, produce each operation on this thread just before writing it.
    /// </remarks>
    public void Write(ContentRecipe recipe, Stream output, ContentPrefix prefix, Action<ContentPrefix>? afterOp, Action<long>? onBytes, CancellationToken ct)
    {
        var count = recipe.Ops.Count;
        var references = ReferencesServed(recipe, prefix.Ops);
        var parallel = !Parallelism.OneTaskAtATime && count - prefix.Ops > 1 && recipe.Size - prefix.Length >= ParallelFromBytes;
        var inFlight = parallel ? OpsInFlight : 1;
        // Operations hold up to 16 MiB of output and 32 MiB of reference: the buffers are rented and returned, so a
        // large file's hundreds of operations reuse a few arrays instead of leaving each one to the collector.
        var pool = ArrayPool<byte>.Shared;
        var pending = new Queue<Pending>();
        var runs = 0;
        SharedReference? held = null; // successive operations of one file often share their reference: kept until another is needed
        var next = prefix.Ops;
        try
        {
            while (pending.Count > 0 || next < count)
            {
                while (next < count && (pending.Count == 0 || runs - pending.Peek().Run < inFlight))
                {
                    ct.ThrowIfCancellationRequested();
                    var end = parallel ? RunEnd(recipe, references, next) : next + 1;
                    var run = new List<Pending>(end - next);
                    for (; next < end; next++)
                    {
                        var reference = references[next] is { } refs ? Acquire(ref held, refs) : null;
                        var started = new Pending(runs, next, pool.Rent(checked((int)recipe.Ops[next].Length + 1)), reference, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                        run.Add(started);
                        pending.Enqueue(started);
                    }

                    Start(recipe, run, parallel, ct);
                    runs++;
                }

                ct.ThrowIfCancellationRequested();
                var done = pending.Peek();
                done.Produced.Task.GetAwaiter().GetResult(); // the operation's own exception, as itself
                pending.Dequeue();
                WriteProduced(recipe, done, output, prefix, onBytes, pool);
                if (done.Index + 1 < count) afterOp?.Invoke(prefix);
            }
        }
        finally
        {
            Drain(pending, pool);
            held?.Release(pool);
        }

        if (prefix.Sha256 is not { } hash) return;
        if (hash != recipe.Sha256)
            throw new PatcherException(PatchErrorCode.DeltaOutputMismatch, $"content {recipe.Sha256} rebuilt from its operations has SHA-256 {hash}", recipe.Sha256);
    }

    /// <summary>Writes an operation's verified output and appends it to the prefix; its buffer goes back to the pool.</summary>
    private void WriteProduced(ContentRecipe recipe, Pending done, Stream output, ContentPrefix prefix, Action<long>? onBytes, ArrayPool<byte> pool)
    {
        try
        {
            var bytes = done.Buffer.AsSpan(0, (int)recipe.Ops[done.Index].Length);
            output.Write(bytes);
            prefix.Append(bytes);
            prefix.Completed(1);
            Interlocked.Increment(ref _opsRun);
            Interlocked.Add(ref _bytesRun, bytes.Length);
            onBytes?.Invoke(bytes.Length);
        }
        finally
        {
            Finish(done, pool);
        }
    }

    /// <summary>
    /// Operations still running after a failure or cancellation finish (each checks the token first) before their
    /// buffers go back to the pool and before the caller may close the output or the install.
    /// </summary>
    private static void Drain(Queue<Pending> pending, ArrayPool<byte> pool)
    {
        foreach (var left in pending)
        {
            try
            {
                left.Produced.Task.Wait(CancellationToken.None);
            }
            catch (AggregateException)
            {
                // Past the operation that failed or the cancellation: never written, its error is not the one reported.
            }

            Finish(left, pool);
        }
    }

    /// <summary>
    /// The end of the run of operations produced together from <paramref name="from"/>: consecutive operations of at
    /// most <see cref="DeltaLimits.MaxDataLength"/> bytes together (at least one), served from one reference or none,
    /// so that a file of many small operations hands work between threads per run, not per operation, and a run holds
    /// no more than one operation's maximum of output and one reference.
    /// </summary>
    private static int RunEnd(ContentRecipe recipe, IReadOnlyList<RefWindow>?[] references, int from)
    {
        long bytes = recipe.Ops[from].Length;
        var reference = references[from];
        var end = from + 1;
        for (; end < recipe.Ops.Count && bytes + recipe.Ops[end].Length <= DeltaLimits.MaxDataLength; end++)
        {
            if (references[end] is { } next)
            {
                if (reference is null) reference = next;
                else if (!ReferenceEquals(next, reference) && !next.SequenceEqual(reference)) break;
            }

            bytes += recipe.Ops[end].Length;
        }

        return end;
    }

    /// <summary>
    /// Produces the operations of <paramref name="run"/> in order, completing each one's <see cref="Pending.Produced"/>
    /// as soon as it is ready: on the thread pool when <paramref name="parallel"/> and the receiver's budget of
    /// <see cref="OpsInFlight"/> pooled runs (shared by the contents rebuilt at once) has room, else here and now. After
    /// an operation fails, the rest of the run is not produced (never written: the failure is thrown first).
    /// </summary>
    private void Start(ContentRecipe recipe, List<Pending> run, bool parallel, CancellationToken ct)
    {
        void Run()
        {
            Exception? failed = null;
            foreach (var p in run)
            {
                if (failed is not null)
                {
                    p.Produced.SetException(failed);
                    continue;
                }

                try
                {
                    ct.ThrowIfCancellationRequested();
                    var op = recipe.Ops[p.Index];
                    try
                    {
                        Produce(recipe, op, p.Buffer, p.Reference);
                    }
                    catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseMismatch && Shipped(op) is { } shipped)
                    {
                        // The base bytes this operation reads are damaged, but the patch ships the same output whole.
                        Decode(recipe, shipped, [], p.Buffer);
                    }

                    p.Produced.SetResult();
                }
                catch (Exception ex)
                {
                    failed = ex;
                    p.Produced.SetException(ex);
                }
            }
        }

        if (parallel && Interlocked.Increment(ref _pooled) <= OpsInFlight)
        {
            Task.Run(() =>
            {
                try
                {
                    Run();
                }
                finally
                {
                    Interlocked.Decrement(ref _pooled);
                }
            }, CancellationToken.None);
            return;
        }

        if (parallel) Interlocked.Decrement(ref _pooled);
        Run();
    }

    /// <summary>Gives back what a produced (or abandoned) operation held.</summary>
    private static void Finish(Pending done, ArrayPool<byte> pool)
    {
        pool.Return(done.Buffer);
        done.Reference?.Release(pool);
    }

    /// <summary>An operation started: its run, its index, its output buffer, the reference it holds a count of, and its completion.</summary>
    private sealed record Pending(int Run, int Index, byte[] Buffer, SharedReference? Reference, TaskCompletionSource Produced);

    /// <summary>Puts the output of <paramref name="op"/> into <paramref name="buffer"/>, checked against its SHA-256.</summary>
    private void Produce(ContentRecipe recipe, DeltaOp op, byte[] buffer, SharedReference? reference)
    {
        if (op.Kind == DeltaOpKind.Copy)
        {
            if (CopyFromReference(op, buffer, reference)) return;
            ReadBase(op.BasePath!, op.BaseOffset, buffer.AsSpan(0, (int)op.Length), op.Sha256);
            return;
        }

        Decode(recipe, op, reference is null ? default : reference.Bytes(), buffer);
    }

    /// <summary>Decodes the frame of data operation <paramref name="op"/> against <paramref name="reference"/> and checks its output.</summary>
    private void Decode(ContentRecipe recipe, DeltaOp op, ReadOnlySpan<byte> reference, byte[] buffer)
    {
        var what = $"content {recipe.Sha256[..12]} at {DeltaLimits.PayloadFileName}@{op.PayloadOffset}";
        ZstdPatch.DecompressInto(reference, _frames.Value.ReadFrame(op), (int)op.Length, what, buffer);
        DeltaChecks.Expect(buffer.AsSpan(0, (int)op.Length), op.Sha256, what);
    }

    /// <summary>A data operation of the patch that needs no reference and outputs what <paramref name="op"/> does (null: none).</summary>
    private DeltaOp? Shipped(DeltaOp op) => _shipped.Value.GetValueOrDefault((op.Sha256, op.Length));

    /// <summary>The reference windows, each read and checked, concatenated in order into a rented buffer.</summary>
    private (IReadOnlyList<RefWindow> Refs, byte[] Bytes, int Length) ReadReference(IReadOnlyList<RefWindow> refs, ArrayPool<byte> pool)
    {
        var length = checked((int)refs.Sum(r => r.Length));
        var buffer = pool.Rent(Math.Max(1, length));
        try
        {
            var at = 0;
            foreach (var window in refs)
            {
                ReadWindow(window, buffer.AsSpan(at, (int)window.Length));
                at += (int)window.Length;
            }
        }
        catch
        {
            pool.Return(buffer);
            throw;
        }

        return (refs, buffer, length);
    }

    /// <summary>Reads <paramref name="buffer"/>'s length of base file <paramref name="path"/> at <paramref name="offset"/> and checks the bytes.</summary>
    private void ReadBase(string path, long offset, Span<byte> buffer, string sha256)
    {
        var declared = _base[path];
        if (!walk.TryGetValue(path, out var seen) || seen.Kind != EntryKind.File || seen.Size != declared.Size)
            throw Mismatch(path, "it is missing or has another size");
        using (var input = fs.OpenRead(PathRules.Join(installDir, path)))
        {
            if (input.Length != declared.Size) throw Mismatch(path, "it changed size");
            input.Seek(offset, SeekOrigin.Begin);
            input.ReadExactly(buffer);
        }

        if (Convert.ToHexStringLower(SHA256.HashData(buffer)) != sha256)
            throw Mismatch(path, $"its bytes {offset}..{offset + buffer.Length} differ from the version the patch was built from");
    }

    private PatcherException Mismatch(string path, string why) =>
        new(PatchErrorCode.BaseMismatch,
            $"'{path}' does not match the version this patch expects ({package.Manifest.FromVersion}): {why}. Repair the install or use a full package", path);
}
