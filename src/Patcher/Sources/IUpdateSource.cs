namespace Patching;

/// <summary>
/// Where <see cref="Patcher.UpdateAsync"/> reads a release store from: named objects (<c>channels/stable.json</c>,
/// <c>versions/1.2.0/manifest.json</c>, <c>blobs/ab/abcd…</c>) read whole or by byte range. Nothing a source returns is
/// trusted: every object is checked against a signature or a signed SHA-256 before it is used, so a source only has to
/// move bytes. <see cref="DirectorySource"/> reads a folder or network share, <see cref="HttpSource"/> a static web
/// server or CDN; a launcher can implement its own (signed URLs, a peer cache, a game platform's depot).
/// </summary>
/// <remarks>
/// Names are relative, '/'-separated, lower-case ASCII letters, digits and <c>. - _ /</c>. Implementations must be safe
/// to call from several threads at once and report failures as <see cref="PatcherException"/>:
/// <see cref="PatchErrorCode.SourceObjectMissing"/> for an object that does not exist,
/// <see cref="PatchErrorCode.SourceUnavailable"/> when the source failed after its own retries.
/// </remarks>
public interface IUpdateSource
{
    /// <summary>Reads exactly <paramref name="length"/> bytes of object <paramref name="name"/> starting at <paramref name="offset"/>.</summary>
    /// <exception cref="PatcherException">The object is missing, shorter than asked, or the source failed.</exception>
    Task<byte[]> ReadAsync(string name, long offset, int length, CancellationToken cancellationToken);

    /// <summary>Reads the whole of object <paramref name="name"/>, or returns null when it does not exist.</summary>
    /// <param name="name">The object.</param>
    /// <param name="maxLength">Refuse (with <see cref="PatchErrorCode.LimitExceeded"/>) an object longer than this.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    Task<byte[]?> ReadAllAsync(string name, int maxLength, CancellationToken cancellationToken);
}
