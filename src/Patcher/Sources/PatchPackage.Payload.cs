using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Sources;

/// <summary>Format 2: the payload file holding the zstd frames of the recipes' data operations.</summary>
internal sealed partial class PatchPackage : IDeltaSource
{
    public string PayloadPath => Path.Join(Directory, DeltaLimits.PayloadFileName);

    /// <summary>Checks the payload file is present with the signed length (cheap; frames are checked while receiving).</summary>
    public void CheckPayloadPresent()
    {
        using var payload = OpenPayload();
        if (payload.Length != Manifest.PayloadSize)
            throw new PatcherException(PatchErrorCode.BlobSizeMismatch,
                $"{DeltaLimits.PayloadFileName} is {payload.Length} bytes, the manifest declares {Manifest.PayloadSize}", PayloadPath);
    }

    /// <summary>
    /// Opens the payload as a regular file without blocking, as every patch file is: it may be a FIFO or a symlink, at
    /// rest or swapped in after an earlier check (<see cref="PatchErrorCode.PatchFileNotRegular"/>).
    /// </summary>
    private FileStream OpenPayload() =>
        PatchFileOpen.OpenRegular(PayloadPath, $"the payload ({DeltaLimits.PayloadFileName})")
        ?? throw new PatcherException(PatchErrorCode.BlobMissing, $"{DeltaLimits.PayloadFileName} is missing from the patch", PayloadPath);

    /// <summary>How many times the payload was opened to read frames (once per apply or verify; tests check it).</summary>
    public int PayloadOpens => Volatile.Read(ref _payloadOpens);
    private int _payloadOpens;

    /// <summary>Opens the payload once (checked against the signed length) for every frame an apply or a verify reads.</summary>
    public IFrameReader OpenFrames()
    {
        Interlocked.Increment(ref _payloadOpens);
        var payload = OpenPayload();
        try
        {
            if (payload.Length != Manifest.PayloadSize)
                throw new PatcherException(PatchErrorCode.BlobSizeMismatch, $"{DeltaLimits.PayloadFileName} is {payload.Length} bytes, declared {Manifest.PayloadSize}", PayloadPath);
            return new FrameReader(this, payload);
        }
        catch
        {
            payload.Dispose();
            throw;
        }
    }

    /// <summary>Frames read at their offsets through one open descriptor (positional reads: safe from several threads).</summary>
    private sealed class FrameReader(PatchPackage package, FileStream payload) : IFrameReader
    {
        public byte[] ReadFrame(DeltaOp op)
        {
            Interlocked.Increment(ref package._blobReads);
            var frame = new byte[op.StoredLength];
            for (var at = 0; at < frame.Length;)
            {
                var n = RandomAccess.Read(payload.SafeFileHandle, frame.AsSpan(at), op.PayloadOffset + at);
                if (n == 0)
                    throw new PatcherException(PatchErrorCode.BlobSizeMismatch, $"{DeltaLimits.PayloadFileName} ends before the frame at {op.PayloadOffset}", package.PayloadPath);
                at += n;
            }

            return frame;
        }

        public void Dispose() => payload.Dispose();
    }

    /// <summary>
    /// <c>patchtool verify</c> of a format 2 patch: the payload's length, and every data operation that needs no
    /// reference decoded and hashed. Operations that read the base (copies, references) are checked when applied.
    /// </summary>
    private void VerifyPayload(CancellationToken ct)
    {
        CheckPayloadPresent();
        var standalone = Manifest.Recipes.SelectMany(r => r.Ops).Where(o => o.Kind == DeltaOpKind.Data && o.Refs.Count == 0).ToList();
        using var frames = OpenFrames();
        Parallelism.ForEach(standalone, ct, op =>
        {
            var what = $"{DeltaLimits.PayloadFileName}@{op.PayloadOffset}";
            var output = ZstdPatch.Decompress([], frames.ReadFrame(op), (int)op.Length, what);
            DeltaChecks.Expect(output.Span, op.Sha256, what);
        });
    }
}
