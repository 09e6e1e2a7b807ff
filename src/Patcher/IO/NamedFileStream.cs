using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>
/// A file stream opened from a handle (relative to a held directory, without following a link at its name) that knows
/// the path it was opened by. <see cref="FileStream.Name"/> of a stream made from a handle is "[Unknown]", and an error
/// while syncing or writing it must name the file.
/// </summary>
internal sealed class NamedFileStream(SafeFileHandle handle, FileAccess access, string path) : FileStream(handle, access, bufferSize: 0)
{
    public string OpenedPath => path;

    /// <summary>The path a stream of the file-operations seam was opened by.</summary>
    public static string PathOf(FileStream stream) => stream is NamedFileStream named ? named.OpenedPath : stream.Name;
}
