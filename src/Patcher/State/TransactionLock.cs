namespace Patching.State;

/// <summary>
/// Exclusive lock on one install's state directory, so two appliers never interleave. On Unix .NET takes an
/// advisory flock for FileShare.None; on Windows it is a real share lock. The OS drops it when the process
/// dies, so a crashed applier never leaves a stale lock.
/// </summary>
internal sealed class TransactionLock : IDisposable
{
    private readonly FileStream _stream;

    private TransactionLock(FileStream stream) => _stream = stream;

    /// <summary>Returns null when another process holds the lock.</summary>
    public static TransactionLock? TryAcquire(string path)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            // Writable by its owner only whatever the umask: a lock file others could write is refused (StateTrust).
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            return new TransactionLock(new FileStream(path, options));
        }
        catch (IOException ex) when (IO.NativeErrors.IsLockConflict(ex))
        {
            return null;
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new PatcherException(PatchErrorCode.AccessDenied, $"cannot open the lock file: {ex.Message}", path, ex);
        }
        catch (IOException ex)
        {
            // A read-only file system (EROFS), a full disk, a missing state directory: not "busy". Reporting Busy
            // here would make a launcher retry forever against a state directory it can never write.
            throw IO.NativeErrors.FromException(ex, "open the lock file", path);
        }
    }

    /// <summary>
    /// Whether another process holds the lock right now, asked without writing: the lock file is opened read-only with a
    /// shared lock (a read-only file system answers too), which fails while an applier holds the exclusive one. An
    /// applier that tries to start in the microseconds the probe holds its shared lock is told Busy, as with any other
    /// holder. False when there is no lock file.
    /// </summary>
    public static bool IsHeld(string path)
    {
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return false;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
        catch (IOException ex) when (IO.NativeErrors.IsLockConflict(ex))
        {
            return true;
        }
    }

    public void Dispose() => _stream.Dispose();
}
