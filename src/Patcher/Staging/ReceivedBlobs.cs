using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.State;

namespace Patching.Staging;

/// <summary>
/// What <see cref="BlobReceiver"/> received: one verified, fsynced file per content some target file is written from,
/// in the incoming directory, with the executable bit that file was given. <see cref="ShadowTreeBuilder"/> places
/// them into the shadow tree; <see cref="Release"/> then drops the incoming directory.
/// </summary>
internal sealed class ReceivedBlobs(string incomingDir, IReadOnlyDictionary<string, bool> executableByHash, long bytesWritten, int linked)
{
    private bool _released;

    /// <summary>Bytes written into the incoming directory (linked blobs write none).</summary>
    public long BytesWritten => bytesWritten;

    /// <summary>Contents rebuilt into the partial directory rather than the incoming one, by hash: where each lies.</summary>
    public IReadOnlyDictionary<string, string> Rebuilt { get; init; } = new Dictionary<string, string>();

    /// <summary>Blobs hard-linked from the patch instead of copied.</summary>
    public int Linked => linked;

    /// <summary>The received file of <paramref name="sha256"/> and its executable bit; false once released or when never received.</summary>
    public bool TryGet(string sha256, out string path, out bool executable)
    {
        path = Rebuilt.GetValueOrDefault(sha256) ?? PathOf(incomingDir, sha256);
        executable = false;
        return !_released && executableByHash.TryGetValue(sha256, out executable);
    }

    /// <summary>
    /// Received files are spread over up to 16 subdirectories by the first hex digit of their hash: creating a file
    /// holds its directory's lock while the file system allocates the inode, and sixteen directories let the workers
    /// create in parallel (docs/benchmarks.md has the measurement).
    /// </summary>
    public static string FanOut(string sha256) => sha256[..1];

    public static string PathOf(string incomingDir, string sha256) => Path.Join(incomingDir, FanOut(sha256), sha256);

    /// <summary>
    /// After staging, the received files live on as links in the shadow tree; the incoming directory (and the partial
    /// directory of rebuilt contents) goes to the trash (one rename each) and is deleted with the old tree, off the
    /// critical path. On Windows they are deleted at once (below). Runs once; later calls do nothing.
    /// </summary>
    public void Release(IFileOps fs, StateLayout layout, string txId, ILogger log)
    {
        if (_released) return;
        _released = true;
        Drop(fs, layout, incomingDir, txId + "-incoming", log);
        Drop(fs, layout, layout.PartialDir, txId + "-partial", log);
    }

    private static void Drop(IFileOps fs, StateLayout layout, string dir, string trashName, ILogger log)
    {
        if (fs.Stat(dir).Kind != EntryKind.Directory) return;
        if (OperatingSystem.IsWindows())
        {
            // A received file is another name of a file the update installs (staging linked it). On Windows, deleting a
            // name opens the file for DELETE access, and while that handle exists, opening any name of the file without
            // FILE_SHARE_DELETE (what File.ReadAllBytes and most games do) fails with a sharing violation. So the names
            // are deleted here, before the commit, rather than from the trash after Apply returned, when the game may
            // already be reading its new files. A name that cannot be deleted now (a scanner holding the file) goes to
            // the trash.
            try
            {
                TreeOps.DeleteTree(fs, dir);
                return;
            }
            catch (PatcherException ex)
            {
                log.LogInformation("Could not delete the received blobs in {Incoming} now ({Reason}); moving them to the trash", dir, ex.Message);
            }
        }

        Trash.Move(fs, layout, dir, trashName);
    }
}
