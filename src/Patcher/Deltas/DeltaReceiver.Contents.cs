using Patching.Manifests;

namespace Patching.Deltas;

/// <summary>
/// Reference windows into contents the same patch rebuilds earlier (<see cref="RefWindow.Content"/>): several builds of
/// one bundle, changed alike, ship their shared edit once and decode against the first one rebuilt. Such a window is
/// read from the rebuilt file of that content, once that content is complete (verified as a whole and fsynced), and
/// checked against the window's own signed SHA-256 before it is used, as a base window is. A content window's
/// <see cref="RefWindow.Path"/> is empty and a copy operation's base path never is (paths are validated non-empty), so
/// a copy is never served from a content window's bytes by <see cref="CopyFromReference"/>.
/// </summary>
internal sealed partial class DeltaReceiver
{
    /// <summary>
    /// Given a content's SHA-256, waits until that content is rebuilt, verified and durable, and returns the file it
    /// lies in; throws that content's own failure if rebuilding it failed. Null: the receiver reads base windows only,
    /// and a content window is refused.
    /// </summary>
    public Func<string, string>? ContentPath { get; init; }

    /// <summary>Reads window <paramref name="window"/> into <paramref name="buffer"/> from a base file or an earlier content, and checks it.</summary>
    private void ReadWindow(RefWindow window, Span<byte> buffer)
    {
        if (window.Content is not { } content)
        {
            ReadBase(window.Path, window.Offset, buffer, window.Sha256);
            return;
        }

        var path = ContentPath?.Invoke(content)
            ?? throw new PatcherException(PatchErrorCode.DeltaReferenceNotEarlier, $"a reference window lies in content {content}, which is not rebuilt here", content);
        using (var input = fs.OpenRead(path))
        {
            input.Seek(window.Offset, SeekOrigin.Begin);
            input.ReadExactly(buffer);
        }

        DeltaChecks.Expect(buffer, window.Sha256, $"the reference window {window.Offset}..{window.Offset + buffer.Length} of content {content}");
    }
}
