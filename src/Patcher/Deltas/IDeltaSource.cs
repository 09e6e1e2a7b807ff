using Patching.Manifests;

namespace Patching.Deltas;

/// <summary>
/// What <see cref="DeltaReceiver"/> rebuilds contents from besides the install: the verified manifest and the payload's
/// frames. The patch package implements it, so deltas depend on manifests and IO only, and the package on deltas.
/// </summary>
internal interface IDeltaSource
{
    /// <summary>The verified manifest (its base list names what copies and references read).</summary>
    Manifest Manifest { get; }

    /// <summary>Opens the payload once, for every frame one apply reads.</summary>
    IFrameReader OpenFrames();
}

/// <summary>The payload opened for reading: frames may be read from several threads at once.</summary>
internal interface IFrameReader : IDisposable
{
    /// <summary>The zstd frame of data operation <paramref name="op"/> (its bounds were validated against the signed payload length).</summary>
    byte[] ReadFrame(DeltaOp op);
}
