using Patching.Deltas;
using Patching.Manifests;

namespace Patching.Tests.TestHelpers;

/// <summary>A manifest and a payload held in memory, for driving <see cref="DeltaReceiver"/> with operations a builder would not write.</summary>
internal sealed class FakeDeltaSource(Manifest manifest, byte[] payload) : IDeltaSource
{
    public Manifest Manifest { get; } = manifest;

    /// <summary>Called on the reading thread before each frame is read (e.g. to watch how many operations decode at once).</summary>
    public Action<DeltaOp>? OnReadFrame { get; init; }

    public IFrameReader OpenFrames() => new Reader(payload, OnReadFrame);

    private sealed class Reader(byte[] payload, Action<DeltaOp>? onRead) : IFrameReader
    {
        public byte[] ReadFrame(DeltaOp op)
        {
            onRead?.Invoke(op);
            return payload.AsSpan((int)op.PayloadOffset, (int)op.StoredLength).ToArray();
        }

        public void Dispose()
        {
        }
    }
}
