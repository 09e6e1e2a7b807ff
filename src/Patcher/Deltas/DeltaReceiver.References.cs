using System.Buffers;
using System.Runtime.ExceptionServices;
using Patching.Manifests;

namespace Patching.Deltas;

/// <summary>
/// Copies served from the reference the receiver holds. A file edited in places is mostly copy operations of its old
/// version, and its data operations decode against windows of that same old version: the windows are read and checked
/// against their signed SHA-256 once, and every copy that lies inside one is taken from those verified bytes in memory
/// instead of reading the base a second time and hashing the same bytes again.
/// </summary>
internal sealed partial class DeltaReceiver
{
    /// <summary>
    /// Whether the content needs a hash of its own: not when its only operation is a data operation that outputs all of
    /// it under the same signed SHA-256, since <see cref="Decode"/> has then checked exactly those bytes against it.
    /// </summary>
    private static bool WholeCheckNeeded(ContentRecipe recipe) =>
        recipe.Ops is not [{ Kind: DeltaOpKind.Data } only] || only.Length != recipe.Size || only.Sha256 != recipe.Sha256;

    /// <summary>For each operation of <paramref name="recipe"/>, the windows of the first data operation with a reference at or after it (null: none).</summary>
    private static IReadOnlyList<RefWindow>?[] UpcomingReferences(ContentRecipe recipe)
    {
        var upcoming = new IReadOnlyList<RefWindow>?[recipe.Ops.Count];
        IReadOnlyList<RefWindow>? next = null;
        for (var i = recipe.Ops.Count - 1; i >= 0; i--)
        {
            if (recipe.Ops[i] is { Kind: DeltaOpKind.Data, Refs.Count: > 0 } data) next = data.Refs;
            upcoming[i] = next;
        }

        return upcoming;
    }

    /// <summary>
    /// For each operation from <paramref name="from"/> on, the reference it is served from (null: none): a data
    /// operation's own windows; for a copy, the reference last needed, or else the next data operation's (read now,
    /// since that operation reads it anyway), when its base range lies inside one. Decided before any operation runs,
    /// so that operations produced at once agree with the order they are written in.
    /// </summary>
    private static IReadOnlyList<RefWindow>?[] ReferencesServed(ContentRecipe recipe, int from)
    {
        var upcoming = UpcomingReferences(recipe);
        var served = new IReadOnlyList<RefWindow>?[recipe.Ops.Count];
        IReadOnlyList<RefWindow>? held = null;
        for (var i = from; i < recipe.Ops.Count; i++)
        {
            var op = recipe.Ops[i];
            if (op.Kind == DeltaOpKind.Copy)
            {
                if ((held is null || Within(held, op) < 0) && upcoming[i] is { } next && Within(next, op) >= 0) held = next;
                served[i] = held is not null && Within(held, op) >= 0 ? held : null;
            }
            else if (op.Refs.Count > 0)
            {
                held = op.Refs;
                served[i] = held;
            }
        }

        return served;
    }

    /// <summary>
    /// A count of the reference with windows <paramref name="refs"/>: <paramref name="held"/> when it has the same
    /// windows, else a new one that becomes <paramref name="held"/> (the one held before loses the count holding kept).
    /// </summary>
    private SharedReference Acquire(ref SharedReference? held, IReadOnlyList<RefWindow> refs)
    {
        if (held is null || !held.Refs.SequenceEqual(refs))
        {
            held?.Release(ArrayPool<byte>.Shared);
            held = new SharedReference(this, refs);
        }

        held.AddCount();
        return held;
    }

    /// <summary>
    /// Puts copy operation <paramref name="op"/>'s bytes into <paramref name="buffer"/> from the verified
    /// <paramref name="reference"/> it is served from. False when it has none or the reference does not verify (the
    /// caller reads and checks the range itself).
    /// </summary>
    private static bool CopyFromReference(DeltaOp op, byte[] buffer, SharedReference? reference)
    {
        if (reference is null) return false;
        var at = Within(reference.Refs, op);
        if (at < 0) return false;
        ReadOnlySpan<byte> verified;
        try
        {
            verified = reference.Bytes();
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseMismatch)
        {
            // A damaged window is the data operation's to meet (it may fall back to shipped output); this copy
            // reads and checks its own range, which may well be intact.
            return false;
        }

        verified.Slice((int)at, (int)op.Length).CopyTo(buffer);
        return true;
    }

    /// <summary>Where the base range copy operation <paramref name="op"/> reads lies in the windows <paramref name="refs"/> concatenated (-1: in none).</summary>
    private static long Within(IReadOnlyList<RefWindow> refs, DeltaOp op)
    {
        long at = 0;
        foreach (var window in refs)
        {
            if (string.Equals(window.Path, op.BasePath, StringComparison.Ordinal) && op.BaseOffset >= window.Offset && op.BaseOffset + op.Length <= window.Offset + window.Length)
                return at + (op.BaseOffset - window.Offset);
            at += window.Length;
        }

        return -1;
    }

    /// <summary>
    /// A reference shared by the operations served from it: read and checked once, by the first of them to need it
    /// (the others wait for it), and its buffer returned to the pool when the last count is released. A read that
    /// fails fails the same way for every operation that needs it.
    /// </summary>
    private sealed class SharedReference(DeltaReceiver receiver, IReadOnlyList<RefWindow> refs)
    {
        private readonly Lock _gate = new();
        private int _counts = 1;
        private (byte[] Bytes, int Length)? _read;
        private ExceptionDispatchInfo? _failed;

        public IReadOnlyList<RefWindow> Refs => refs;

        public void AddCount() => Interlocked.Increment(ref _counts);

        /// <summary>The windows' bytes, concatenated and checked; rethrows the read's error when it failed.</summary>
        public ReadOnlySpan<byte> Bytes()
        {
            lock (_gate)
            {
                if (_read is null && _failed is null)
                {
                    try
                    {
                        var (_, bytes, length) = receiver.ReadReference(refs, ArrayPool<byte>.Shared);
                        _read = (bytes, length);
                    }
                    catch (Exception ex)
                    {
                        _failed = ExceptionDispatchInfo.Capture(ex);
                    }
                }

                _failed?.Throw();
                return _read!.Value.Bytes.AsSpan(0, _read.Value.Length);
            }
        }

        /// <summary>Drops a count; the last returns the buffer (every operation holding a count has finished by then).</summary>
        public void Release(ArrayPool<byte> pool)
        {
            if (Interlocked.Decrement(ref _counts) == 0 && _read is { } read) pool.Return(read.Bytes);
        }
    }
}
