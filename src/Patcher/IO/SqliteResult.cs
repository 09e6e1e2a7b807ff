namespace Patching.IO;

/// <summary>
/// The SQLite primary result codes (sqlite.org/rescode.html) that Patcher tells apart, as
/// <c>SqliteException.SqliteErrorCode</c> reports them. The one place these numbers are written.
/// </summary>
internal static class SqliteResult
{
    /// <summary>SQLITE_PERM: the requested access mode cannot be provided.</summary>
    public const int Perm = 3;

    /// <summary>SQLITE_READONLY: a write to a database opened read-only, or on a read-only file system.</summary>
    public const int ReadOnly = 8;

    /// <summary>SQLITE_CORRUPT: the database file is malformed.</summary>
    public const int Corrupt = 11;

    /// <summary>SQLITE_FULL: the disk is full.</summary>
    public const int Full = 13;

    /// <summary>SQLITE_CANTOPEN: the file (or its write-ahead log or shared-memory file) cannot be opened or created.</summary>
    public const int CantOpen = 14;

    /// <summary>SQLITE_NOTADB: the file is not an SQLite database.</summary>
    public const int NotADatabase = 26;

    /// <summary>Whether <paramref name="code"/> says the file cannot be read as a journal at all.</summary>
    public static bool IsCorrupt(int code) => code is Corrupt or NotADatabase;
}
