using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Sources;

/// <summary>Format 2: the payload file holding the zstd frames of the recipes' data operations.</summary>
internal sealed partial class PatchPackage
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

    /// <summary>Reads the zstd frame of data operation <paramref name="op"/> (bounds were validated against the signed payload length).</summary>
    public byte[] ReadFrame(DeltaOp op)
    {
        Interlocked.Increment(ref _blobReads);
        var frame = new byte[op.StoredLength];
        using var payload = OpenPayload();
        if (payload.Length != Manifest.PayloadSize)
            throw new PatcherException(PatchErrorCode.BlobSizeMismatch, $"{DeltaLimits.PayloadFileName} is {payload.Length} bytes, declared {Manifest.PayloadSize}", PayloadPath);
        payload.Seek(op.PayloadOffset, SeekOrigin.Begin);
        payload.ReadExactly(frame);
        return frame;
    }

    /// <summary>
    /// <c>patchtool verify</c> of a format 2 patch: the payload's length, and every data operation that needs no
    /// reference decoded and hashed. Operations that read the base (copies, references) are checked when applied.
    /// </summary>
    private void VerifyPayload(CancellationToken ct)
    {
        CheckPayloadPresent();
        var standalone = Manifest.Recipes.SelectMany(r => r.Ops).Where(o => o.Kind == DeltaOpKind.Data && o.Refs.Count == 0).ToList();
        Parallelism.ForEach(standalone, ct, op =>
        {
            var what = $"{DeltaLimits.PayloadFileName}@{op.PayloadOffset}";
            var output = ZstdPatch.Decompress([], ReadFrame(op), (int)op.Length, what);
            DeltaChecks.Expect(output.Span, op.Sha256, what);
        });
    }
}
