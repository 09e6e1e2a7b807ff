using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Patching.IO;

namespace Patching.Journal;

/// <summary>
/// Opening the journal's database: the durability pragmas, the tables, the schema version, the read-only open, and
/// moving a corrupt journal aside. What is stored in the tables is <see cref="JournalStore"/>'s business.
/// </summary>
internal static class JournalSchema
{
    /// <summary>
    /// 2: manifests stored once, by hash. A journal of schema 1 (manifest bytes in <c>tx</c> and <c>installed</c>,
    /// written only by development builds before the first release) is refused, not migrated.
    /// </summary>
    private const int Version = 2;

    private const string Tables = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE manifests(hash TEXT PRIMARY KEY, bytes BLOB NOT NULL);
        CREATE TABLE tx(
            id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, product TEXT NOT NULL,
            from_version TEXT, to_version TEXT NOT NULL, manifest_hash TEXT NOT NULL,
            signature TEXT, key_ids TEXT, strategy TEXT NOT NULL, state TEXT NOT NULL,
            keep_previous INTEGER NOT NULL DEFAULT 0, staging_dev INTEGER NOT NULL DEFAULT 0, staging_ino INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL, updated TEXT NOT NULL);
        CREATE TABLE files(
            tx_id TEXT NOT NULL, path TEXT NOT NULL, expected_sha256 TEXT NOT NULL, observed_sha256 TEXT,
            state TEXT NOT NULL, PRIMARY KEY(tx_id, path));
        CREATE TABLE installed(
            id INTEGER PRIMARY KEY CHECK (id = 1), product TEXT NOT NULL, version TEXT NOT NULL,
            manifest_hash TEXT NOT NULL, previous_version TEXT, previous_manifest_hash TEXT);
        CREATE TABLE layered_ops(
            tx_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, expected_sha256 TEXT,
            backup INTEGER NOT NULL, user INTEGER NOT NULL, state TEXT NOT NULL, layer TEXT, PRIMARY KEY(tx_id, seq));
        """;

    /// <summary>
    /// Opens (or creates) the journal for writing. A corrupt journal with no transaction pending holds only history and
    /// is moved aside (named by <paramref name="time"/>'s clock) and recreated; with a transaction pending it is an
    /// error, because guessing could mix versions.
    /// </summary>
    public static SqliteConnection OpenForWriting(string path, bool transactionPending, ILogger log, TimeProvider time)
    {
        try
        {
            return OpenOrCreate(path);
        }
        catch (SqliteException ex) when (SqliteResult.IsCorrupt(ex.SqliteErrorCode))
        {
            if (transactionPending)
            {
                throw new PatcherException(PatchErrorCode.JournalCorrupt,
                    $"the journal is corrupt while a transaction is pending; the install was not changed further. Restore or remove '{path}' and check the install with 'patchtool verify-install'", path, ex);
            }

            var aside = path + ".corrupt-" + time.GetUtcNow().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
            log.LogWarning(PatcherLogEvents.JournalReset, "Journal {Path} is corrupt and no transaction is pending; moved it to {Aside} and starting a new one", path, aside);
            SqliteConnection.ClearAllPools();
            File.Move(path, aside);
            foreach (var suffix in new[] { "-wal", "-shm" })
            {
                if (File.Exists(path + suffix)) File.Move(path + suffix, aside + suffix);
            }

            return OpenOrCreate(path);
        }
    }

    /// <summary>
    /// Opens the journal only to read it (Status, Verify): it is never created, set up, migrated or moved aside, so an
    /// install on a read-only file system, or a state directory this user may not write, can still be asked. Null for a
    /// journal with no tables yet (its creation never completed): nothing was recorded.
    /// </summary>
    /// <remarks>
    /// A journal in WAL mode is read through SQLite's shared-memory file beside it, which a read-only file system does not
    /// let SQLite create. When that fails and no write-ahead log is left over (a writer that closed normally leaves none),
    /// the journal is read as immutable: its file then holds everything committed, and nothing can change it on a read-only
    /// file system. Where another process could still write (a state directory only its owner may write), a read taken so
    /// may miss that process's latest rows; it never changes anything. A left-over log is never skipped: the open fails.
    /// </remarks>
    public static SqliteConnection? OpenForReading(string path)
    {
        SqliteConnection db;
        string? schema;
        try
        {
            (db, schema) = ConnectReadOnly(path);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is SqliteResult.CantOpen or SqliteResult.ReadOnly && !File.Exists(path + "-wal"))
        {
            (db, schema) = ConnectReadOnly(ImmutableUri(path));
        }
        catch (SqliteException ex) when (SqliteResult.IsCorrupt(ex.SqliteErrorCode))
        {
            throw new PatcherException(PatchErrorCode.JournalCorrupt, "the journal is corrupt; the next apply moves it aside when nothing is pending", path, ex);
        }

        try
        {
            if (schema is null)
            {
                db.Dispose();
                return null;
            }

            CheckSchema(schema, path);
            return db;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Connects read-only and reads the schema: SQLite opens lazily, so a journal it cannot read fails at that first query.</summary>
    private static (SqliteConnection Db, string? Schema) ConnectReadOnly(string dataSource)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dataSource, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            db.Open();
            return (db, ReadSchema(db, null));
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A SQLite URI filename (<c>file:///path?immutable=1</c>) for <paramref name="path"/>, every byte outside the
    /// unreserved set percent-encoded (a '%', '?' or '#' in a folder name stays part of the path; so does a backslash
    /// off Windows). On Windows the path's backslashes become slashes, a <c>\\?\</c> prefix is dropped, and a UNC path
    /// <c>\\server\share</c> is written with an empty authority (<c>file:////server/share</c>): SQLite refuses any other.
    /// </summary>
    private static string ImmutableUri(string path)
    {
        var full = Path.GetFullPath(path);
        if (OperatingSystem.IsWindows())
        {
            if (full.StartsWith(@"\\?\UNC\", StringComparison.OrdinalIgnoreCase)) full = @"\\" + full[8..];
            else if (full.StartsWith(@"\\?\", StringComparison.Ordinal)) full = full[4..];
            full = full.Replace('\\', '/');
        }

        var uri = new StringBuilder("file://");
        if (!full.StartsWith('/')) uri.Append('/'); // C:/... on Windows
        foreach (var b in Encoding.UTF8.GetBytes(full))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '.' or '_' or '~' or ':') uri.Append(c);
            else uri.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }

        return uri.Append("?immutable=1").ToString();
    }

    /// <summary>
    /// Connects with the durable settings: WAL with synchronous=FULL, so a committed row is on disk when the call
    /// returns. An existing journal is only read here (Status and refused patches write nothing); a new one is created
    /// whole in one SQLite transaction, which also settles two openers creating it at once.
    /// </summary>
    private static SqliteConnection OpenOrCreate(string path)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            db.Open();
            JournalSql.Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
            var schema = ReadSchema(db, null);
            if (schema is null)
            {
                using var t = db.BeginTransaction();
                schema = ReadSchema(db, t);
                if (schema is null)
                {
                    JournalSql.Exec(db, Tables, t);
                    schema = Version.ToString(CultureInfo.InvariantCulture);
                    JournalSql.Exec(db, "INSERT INTO meta(key, value) VALUES('schema', $v)", t, ("$v", schema));
                }

                t.Commit();
            }

            CheckSchema(schema, path);
            return db;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Refuses a journal whose schema this build does not read.</summary>
    private static void CheckSchema(string schema, string path)
    {
        if (schema != Version.ToString(CultureInfo.InvariantCulture))
        {
            throw new PatcherException(PatchErrorCode.JournalCorrupt,
                $"journal schema {schema} is not supported (this build reads schema {Version}); it was written by another build of Patcher. Let that build finish any pending update, or remove '{path}' (Patcher then no longer knows which version is installed)", path);
        }
    }

    /// <summary>
    /// The schema recorded in <c>meta</c>; null for a new (empty) database. Tables without a recorded schema come from
    /// a build that created its tables before recording one: reported as "unknown", never adopted.
    /// </summary>
    private static string? ReadSchema(SqliteConnection db, SqliteTransaction? t)
    {
        using var cmd = db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'";
        if (Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) != 0)
        {
            cmd.CommandText = "SELECT value FROM meta WHERE key = 'schema'";
            if (cmd.ExecuteScalar() is string schema) return schema;
        }

        cmd.CommandText = "SELECT count(*) FROM sqlite_schema";
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) == 0 ? null : "unknown";
    }
}
