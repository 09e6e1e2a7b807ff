using Patching.Sources;

namespace Patching;

/// <summary>An <see cref="IUpdateSource"/> reading a release store from a local folder or a network share.</summary>
public sealed class DirectorySource : IUpdateSource
{
    private readonly string _root;

    /// <summary>Reads the store at <paramref name="root"/>.</summary>
    public DirectorySource(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        _root = Path.GetFullPath(root);
    }

    /// <inheritdoc/>
    public async Task<byte[]> ReadAsync(string name, long offset, int length, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        try
        {
            await using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
            if (offset < 0 || offset + length > s.Length)
                throw new PatcherException(PatchErrorCode.SourceUnavailable, $"'{name}' is {s.Length} bytes, {length} asked at {offset}", path);
            s.Seek(offset, SeekOrigin.Begin);
            var buffer = new byte[length];
            await s.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no '{name}'", path, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PatcherException(PatchErrorCode.SourceUnavailable, $"reading '{name}' failed: {ex.Message}", path, ex);
        }
    }

    /// <inheritdoc/>
    public async Task<byte[]?> ReadAllAsync(string name, int maxLength, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        try
        {
            await using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
            if (s.Length > maxLength)
                throw new PatcherException(PatchErrorCode.LimitExceeded, $"'{name}' is {s.Length} bytes, over the limit of {maxLength}", path);
            var buffer = new byte[s.Length];
            await s.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PatcherException(PatchErrorCode.SourceUnavailable, $"reading '{name}' failed: {ex.Message}", path, ex);
        }
    }

    private string PathOf(string name) => Path.Join(_root, SourceNames.Check(name));
}
