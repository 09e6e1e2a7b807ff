using System.Buffers;
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
    /// Puts copy operation <paramref name="op"/>'s bytes into <paramref name="buffer"/> from a verified reference, when
    /// its base range lies inside one: the one held, or <paramref name="upcoming"/>, which the next data operation reads
    /// anyway and is then read now. False when neither covers it (the caller reads and checks the range itself).
    /// </summary>
    private bool CopyFromReference(DeltaOp op, byte[] buffer, ArrayPool<byte> pool, IReadOnlyList<RefWindow>? upcoming, ref (IReadOnlyList<RefWindow> Refs, byte[] Bytes, int Length)? lastRef)
    {
        if ((lastRef is not { } held || Within(held.Refs, op) < 0) && upcoming is not null && Within(upcoming, op) >= 0)
        {
            if (lastRef is { } stale) pool.Return(stale.Bytes);
            lastRef = null; // returned: if the read throws, the caller must not return it again
            try
            {
                lastRef = ReadReference(upcoming, pool);
            }
            catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseMismatch)
            {
                // A damaged window is the data operation's to meet (it may fall back to shipped output); this copy
                // reads and checks its own range, which may well be intact.
                return false;
            }
        }

        if (lastRef is not { } verified) return false;
        var at = Within(verified.Refs, op);
        if (at < 0) return false;
        verified.Bytes.AsSpan((int)at, (int)op.Length).CopyTo(buffer);
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
}
