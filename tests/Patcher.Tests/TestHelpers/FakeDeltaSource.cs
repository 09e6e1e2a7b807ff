using Patching.Deltas;
using Patching.Manifests;

namespace Patching.Tests.TestHelpers;

/// <summary>A manifest and a payload held in memory, for driving <see cref="DeltaReceiver"/> with operations a builder would not write.</summary>
internal sealed class FakeDeltaSource(Manifest manifest, byte[] payload) : IDeltaSource
{
    public Manifest Manifest { get; } = manifest;

    public IFrameReader OpenFrames() => new Reader(payload);

    private sealed class Reader(byte[] payload) : IFrameReader
    {
        public byte[] ReadFrame(DeltaOp op) => payload.AsSpan((int)op.PayloadOffset, (int)op.StoredLength).ToArray();

        public void Dispose()
        {
        }
    }
}
