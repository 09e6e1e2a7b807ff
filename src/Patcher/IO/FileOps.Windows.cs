namespace Patching.IO;

internal sealed partial class FileOps
{
    private static void SyncWindows(FileStream fs)
    {
        // On Windows Flush(true) calls FlushFileBuffers and throws on failure, unlike on Unix.
        try
        {
            fs.Flush(flushToDisk: true);
        }
        catch (IOException ex)
        {
            throw NativeErrors.FromException(ex, "FlushFileBuffers", fs.Name);
        }
    }

    private static void RenameWindows(string from, string to)
    {
        try
        {
            if (Directory.Exists(from)) Directory.Move(from, to);
            else File.Move(from, to, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NativeErrors.FromException(ex, $"rename to '{to}'", from);
        }
    }

    private static bool TryHardLinkWindows(string existing, string newPath)
    {
        _ = existing;
        _ = newPath;
        // Copy instead: NTFS hard links would share the file between the live and staged trees, and the
        // layered strategy replaces files in place.
        return false;
    }
}
