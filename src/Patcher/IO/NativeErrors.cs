namespace Patching.IO;

/// <summary>
/// The one place native error numbers (errno, Win32) and .NET I/O exceptions become
/// <see cref="PatcherException"/>s with a stable code.
/// </summary>
internal static class NativeErrors
{
    // errno values shared by Linux and macOS.
    internal const int EPERM = 1, ENOENT = 2, EIO = 5, ENXIO = 6, EACCES = 13, EBUSY = 16, EEXIST = 17, EXDEV = 18,
        ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EROFS = 30, EMLINK = 31;

    // errno values that differ: Linux (generic and x86 ABI) first, then macOS.
    private const int ENOSYS_LINUX = 38, ELOOP_LINUX = 40, ENOTSUP_LINUX = 95, EDQUOT_LINUX = 122, EAGAIN_LINUX = 11;
    private const int ENOTSUP_MACOS = 45, ELOOP_MACOS = 62, EOPNOTSUPP_MACOS = 102, EAGAIN_MACOS = 35;

    /// <summary>ELOOP: a symlink where O_NOFOLLOW forbids one, or too many levels of symlinks.</summary>
    internal static int ELOOP => OperatingSystem.IsMacOS() ? ELOOP_MACOS : ELOOP_LINUX;

    /// <summary>ENOTSUP (also EOPNOTSUPP on Linux): the file system does not offer the call, e.g. extended attributes.</summary>
    internal static int ENOTSUP => OperatingSystem.IsMacOS() ? ENOTSUP_MACOS : ENOTSUP_LINUX;

    // Win32 errors.
    internal const int ERROR_INVALID_FUNCTION = 1, ERROR_FILE_NOT_FOUND = 2, ERROR_PATH_NOT_FOUND = 3, ERROR_ACCESS_DENIED = 5, ERROR_NOT_SAME_DEVICE = 17, ERROR_SHARING_VIOLATION = 32,
        ERROR_LOCK_VIOLATION = 33, ERROR_HANDLE_DISK_FULL = 39, ERROR_NOT_SUPPORTED = 50, ERROR_INVALID_PARAMETER = 87,
        ERROR_DISK_FULL = 112, ERROR_CALL_NOT_IMPLEMENTED = 120, ERROR_MORE_DATA = 234, ERROR_TOO_MANY_LINKS = 1142;

    /// <summary>
    /// An exchange (renameat2 RENAME_EXCHANGE, renamex_np RENAME_SWAP) the file system or kernel cannot do: EINVAL,
    /// ENOSYS, ENOTSUP, EOPNOTSUPP. The caller falls back to another way; anything else is a failure.
    /// </summary>
    public static bool ExchangeUnsupported(int errno) =>
        errno is EINVAL or ENOSYS_LINUX or ENOTSUP_LINUX or ENOTSUP_MACOS or EOPNOTSUPP_MACOS;

    /// <summary>
    /// A hard link the file system or policy does not allow: EXDEV (another volume), EPERM (fs.protected_hardlinks,
    /// FAT), EMLINK, ENOTSUP. The caller copies instead.
    /// </summary>
    public static bool HardLinkImpossible(int errno) => errno is EXDEV or EPERM or EMLINK or ENOTSUP_LINUX or ENOTSUP_MACOS;

    /// <summary>
    /// Windows' answer to CreateHardLink on another volume, FAT/exFAT, a share without links, or a file with 1023 links
    /// already: the caller copies instead.
    /// </summary>
    public static bool HardLinkImpossibleWin32(int error) =>
        error is ERROR_NOT_SAME_DEVICE or ERROR_INVALID_FUNCTION or ERROR_NOT_SUPPORTED or ERROR_TOO_MANY_LINKS or ERROR_CALL_NOT_IMPLEMENTED;

    /// <summary>Windows' answer to a POSIX-semantics rename on a system or volume that cannot do one.</summary>
    public static bool PosixRenameUnsupportedWin32(int error) =>
        error is ERROR_INVALID_PARAMETER or ERROR_NOT_SUPPORTED or ERROR_INVALID_FUNCTION or ERROR_CALL_NOT_IMPLEMENTED;

    /// <summary>Win32's "no such file" and "no such directory on the way": the entry is missing.</summary>
    public static bool IsNotFoundWin32(int error) => error is ERROR_FILE_NOT_FOUND or ERROR_PATH_NOT_FOUND;

    /// <summary>Win32 access denied, which on Windows may be a transient lock (antivirus, a delete pending, a running image).</summary>
    public static bool IsAccessDeniedWin32(int? error) => error == ERROR_ACCESS_DENIED;

    /// <summary>A short name for the native error behind a lock (Win32 numbering where <paramref name="win32"/>, else errno).</summary>
    public static string DescribeLock(int error, bool win32) => (error, win32) switch
    {
        (ERROR_ACCESS_DENIED, true) => "access denied",
        (ERROR_SHARING_VIOLATION, true) => "sharing violation",
        (ERROR_LOCK_VIOLATION, true) => "lock violation",
        (EBUSY, false) => "device or resource busy",
        _ => "locked",
    };

    /// <summary>The stable code for an errno value.</summary>
    public static PatchErrorCode CodeForErrno(int errno) => errno switch
    {
        ENOSPC or EDQUOT_LINUX => PatchErrorCode.DiskFull,
        EACCES or EPERM or EROFS => PatchErrorCode.AccessDenied,
        EBUSY => PatchErrorCode.FileLocked,
        _ => PatchErrorCode.IOFailure,
    };

    public static PatcherException FromErrno(int errno, string operation, string path)
    {
        var code = CodeForErrno(errno);
        var text = errno switch
        {
            ENOSPC => "no space left on device",
            EDQUOT_LINUX => "disk quota exceeded",
            EACCES => "permission denied",
            EPERM => "operation not permitted",
            EROFS => "read-only file system",
            EBUSY => "device or resource busy",
            ENOENT => "no such file or directory",
            EEXIST => "file exists",
            EXDEV => "cross-device link",
            EIO => "input/output error",
            ENOTDIR => "not a directory",
            EISDIR => "is a directory",
            _ when errno == ELOOP => "a symlink where none may be, or a symlink loop",
            _ => $"errno {errno}",
        };
        return new PatcherException(code, $"{operation} failed for '{path}': {text}", path) { NativeError = errno };
    }

    public static PatcherException FromWin32(int error, string operation, string path)
    {
        var code = error switch
        {
            ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL => PatchErrorCode.DiskFull,
            ERROR_ACCESS_DENIED => PatchErrorCode.AccessDenied,
            ERROR_SHARING_VIOLATION or ERROR_LOCK_VIOLATION => PatchErrorCode.FileLocked,
            _ => PatchErrorCode.IOFailure,
        };
        return new PatcherException(code, $"{operation} failed for '{path}': Win32 error {error}", path) { NativeError = error };
    }

    /// <summary>Classifies an exception thrown by a .NET file API.</summary>
    public static PatcherException FromException(Exception ex, string operation, string path)
    {
        if (ex is PatcherException pe) return pe;
        var code = ex switch
        {
            UnauthorizedAccessException => PatchErrorCode.AccessDenied,
            IOException io when IsDiskFull(io) => PatchErrorCode.DiskFull,
            // .NET maps only a few errno values to exception types; the rest (EROFS, EIO, EBUSY, ...) arrive as a
            // plain IOException whose HResult is the raw errno. Classify those as FromErrno does.
            IOException io when UnixErrno(io) is { } errno => CodeForErrno(errno),
            // The journal: SQLite's own result codes (SQLITE_FULL, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM).
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteResult.Full } => PatchErrorCode.DiskFull,
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteResult.Perm or SqliteResult.ReadOnly or SqliteResult.CantOpen } => PatchErrorCode.AccessDenied,
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteResult.Corrupt or SqliteResult.NotADatabase } => PatchErrorCode.JournalCorrupt,
            _ => PatchErrorCode.IOFailure,
        };
        var native = ex is Microsoft.Data.Sqlite.SqliteException sql ? sql.SqliteErrorCode : ex.HResult & 0xFFFF;
        return new PatcherException(code, $"{operation} failed for '{path}': {ex.Message}", path, ex) { NativeError = native };
    }

    /// <summary>
    /// The contract's last line: whatever the file system or the journal throws reaches the caller as a
    /// <see cref="PatcherException"/> with a code (disk full, access denied, I/O failure), never as a raw
    /// IOException or SqliteException. Cancellation passes through as <see cref="OperationCanceledException"/>: Apply
    /// honours it only before the commit (after undoing what it staged), and the read-only calls change nothing.
    /// </summary>
    public static T Guard<T>(string operation, string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (IsEnvironmentFailure(ex))
        {
            throw FromException(ex, operation, path);
        }
    }

    /// <summary>Failures of the file system or the journal that must reach a launcher as a <see cref="PatcherException"/>.</summary>
    public static bool IsEnvironmentFailure(Exception ex) =>
        ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException;

    /// <summary>
    /// True when the exception is "another process holds the lock": flock(LOCK_NB) refused (Unix) or a sharing or
    /// lock violation (Windows). Anything else (read-only file system, permissions, disk full) is a real failure.
    /// </summary>
    public static bool IsLockConflict(IOException io)
    {
        if (OperatingSystem.IsWindows()) return (io.HResult & 0xFFFF) is ERROR_SHARING_VIOLATION or ERROR_LOCK_VIOLATION;
        return UnixErrno(io) is EAGAIN_LINUX or EAGAIN_MACOS;
    }

    /// <summary>The raw errno .NET stores as the HResult of an unmapped Unix I/O error, or null.</summary>
    private static int? UnixErrno(IOException io) =>
        !OperatingSystem.IsWindows() && io.HResult is > 0 and < 4096 ? io.HResult : null;

    public static bool IsDiskFull(IOException io)
    {
        var low = io.HResult & 0xFFFF;
        // On Unix .NET reports the raw errno in HResult for unmapped errors; on Windows the Win32 code.
        return OperatingSystem.IsWindows()
            ? low is ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL
            : low is ENOSPC or EDQUOT_LINUX || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase);
    }
}
