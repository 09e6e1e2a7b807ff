using Patching.Manifests;
using ZstdSharp.Unsafe;
using static ZstdSharp.Unsafe.Methods;

namespace Patching.Deltas;

/// <summary>
/// zstd with a reference ("patch-from"): the reference bytes are referenced as a prefix (ZSTD_CCtx_refPrefix /
/// ZSTD_DCtx_refPrefix), so the frame encodes the new bytes as matches into the old ones. Raw prefix rather than a
/// dictionary: a reference that happens to start with zstd's dictionary magic number must not be parsed as a
/// dictionary. Through ZstdSharp's managed port of the C library: no native library to ship.
/// </summary>
internal static unsafe class ZstdPatch
{
    /// <summary>
    /// Compresses <paramref name="source"/> against <paramref name="reference"/> (may be empty) at <paramref name="level"/>,
    /// with a window that spans the reference and the source (at most 2^<see cref="DeltaLimits.MaxWindowLog"/>).
    /// </summary>
    public static byte[] Compress(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> source, int level)
    {
        var cctx = ZSTD_createCCtx();
        try
        {
            Check(ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_compressionLevel, level));
            Check(ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_checksumFlag, 0));
            Check(ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1));
            if (reference.Length > 0)
            {
                var windowLog = Math.Clamp(64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(reference.Length + source.Length)), 10, DeltaLimits.MaxWindowLog);
                Check(ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_windowLog, windowLog));
                // Long-distance matching finds the reference's content across the whole window, as zstd --patch-from does.
                Check(ZSTD_CCtx_setParameter(cctx, ZSTD_cParameter.ZSTD_c_enableLongDistanceMatching, 1));
            }

            var bound = (int)ZSTD_compressBound((nuint)source.Length);
            var output = new byte[bound];
            fixed (byte* refPtr = reference)
            fixed (byte* src = source)
            fixed (byte* dst = output)
            {
                if (reference.Length > 0) Check(ZSTD_CCtx_refPrefix(cctx, refPtr, (nuint)reference.Length));
                var written = ZSTD_compress2(cctx, dst, (nuint)bound, src, (nuint)source.Length);
                Check(written);
                return output.AsSpan(0, (int)written).ToArray();
            }
        }
        finally
        {
            ZSTD_freeCCtx(cctx);
        }
    }

    /// <summary>
    /// Decodes <paramref name="frame"/> against <paramref name="reference"/> into exactly <paramref name="length"/> bytes.
    /// Never produces or buffers more than <paramref name="length"/> + 1 bytes: output beyond the declared length is
    /// refused as soon as its first byte appears, and a frame asking for a window over 2^<see cref="DeltaLimits.MaxWindowLog"/>
    /// is refused before anything is allocated for it. <paramref name="what"/> names the content in errors.
    /// </summary>
    public static ReadOnlyMemory<byte> Decompress(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> frame, int length, string what)
    {
        var output = new byte[length + 1];
        DecompressInto(reference, frame, length, what, output);
        return output.AsMemory(0, length);
    }

    /// <summary>
    /// <see cref="Decompress"/> into <paramref name="output"/> (at least <paramref name="length"/> + 1 bytes, e.g. rented
    /// from a pool), so that an apply decoding frame after frame does not leave a new buffer of up to
    /// <see cref="DeltaLimits.MaxDataLength"/> bytes behind for the collector each time.
    /// </summary>
    public static void DecompressInto(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> frame, int length, string what, byte[] output)
    {
        var dctx = ZSTD_createDCtx();
        try
        {
            Check(ZSTD_DCtx_setParameter(dctx, ZSTD_dParameter.ZSTD_d_windowLogMax, DeltaLimits.MaxWindowLog));
            // Only length + 1 bytes are offered: one byte past the declaration is enough to see a frame run long.
            var window = output.AsSpan(0, length + 1);
            fixed (byte* refPtr = reference)
            fixed (byte* src = frame)
            fixed (byte* dst = window)
            {
                if (reference.Length > 0) Check(ZSTD_DCtx_refPrefix(dctx, refPtr, (nuint)reference.Length));
                var input = new ZSTD_inBuffer_s { src = src, size = (nuint)frame.Length, pos = 0 };
                var outBuf = new ZSTD_outBuffer_s { dst = dst, size = (nuint)window.Length, pos = 0 };
                nuint remaining;
                do
                {
                    var before = (input.pos, outBuf.pos);
                    remaining = ZSTD_decompressStream(dctx, &outBuf, &input);
                    if (ZSTD_isError(remaining))
                    {
                        var name = ZSTD_getErrorCode(remaining) == ZSTD_ErrorCode.ZSTD_error_frameParameter_windowTooLarge
                            ? PatchErrorCode.DeltaWindowTooLarge
                            : PatchErrorCode.DeltaCorrupt;
                        throw new PatcherException(name, $"the delta of {what} does not decode: {ErrorName(remaining)}", what);
                    }

                    if (outBuf.pos > (nuint)length)
                        throw new PatcherException(PatchErrorCode.DeltaOutputTooLong, $"the delta of {what} decodes to more than the declared {length} bytes", what);
                    if (before == (input.pos, outBuf.pos) && remaining != 0) break; // no progress: truncated frame
                }
                while (remaining != 0 || input.pos < input.size);

                if (remaining != 0 || outBuf.pos != (nuint)length)
                    throw new PatcherException(PatchErrorCode.DeltaCorrupt, $"the delta of {what} decodes to {outBuf.pos} bytes, declared {length}", what);
            }
        }
        finally
        {
            ZSTD_freeDCtx(dctx);
        }
    }

    private static string ErrorName(nuint code) => ZSTD_getErrorName(code);

    private static void Check(nuint code)
    {
        if (ZSTD_isError(code)) throw new InvalidOperationException($"zstd: {ErrorName(code)}");
    }
}
