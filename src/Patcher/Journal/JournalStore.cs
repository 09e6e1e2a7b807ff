using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Journal;

internal sealed record TxRecord
{
    public required string Id { get; init; }
    public required TxKind Kind { get; init; }
    public required string Product { get; init; }
    public string? FromVersion { get; init; }
    public required string ToVersion { get; init; }
    public required string ManifestHash { get; init; }
    public required byte[] Manifest { get; init; }
    public string? Signature { get; init; }
    public string? KeyIds { get; init; }
    public required string Strategy { get; init; }
    public required TxState State { get; init; }
    public bool KeepPrevious { get; init; }
    public ulong StagingDevice { get; init; }
    public ulong StagingInode { get; init; }
}

internal sealed record InstalledRecord(string Product, string Version, string ManifestHash, byte[] Manifest,
    string? PreviousVersion, byte[]? PreviousManifest)
{
    /// <summary>
    /// <see cref="ManifestCodec.Hash"/> of <see cref="PreviousManifest"/> when known (the journal stores each manifest
    /// once, by hash). Left null, <see cref="JournalStore.MarkPatched"/> hashes the bytes itself.
    /// </summary>
    public string? PreviousManifestHash { get; init; }

    /// <summary>
    /// The installed row once <paramref name="manifestBytes"/> is committed over <paramref name="before"/>.
    /// When Patcher did not install the old version itself (no row yet) and the old tree is kept
    /// (<paramref name="keepsPreviousTree"/>), the old version is described by the patch's own base list, so that it can
    /// be rolled back to. When the old tree is not kept, that description would only repeat the base list, which the
    /// transaction's own manifest holds: it is not built (at 100k files, about 25 MiB written inside the patched step).
    /// </summary>
    public static InstalledRecord After(byte[] manifestBytes, string manifestHash, InstalledRecord? before, bool keepsPreviousTree) =>
        After(ManifestCodec.Deserialize(manifestBytes), manifestBytes, manifestHash, before, keepsPreviousTree);

    /// <summary><see cref="After(byte[], string, InstalledRecord?, bool)"/> for a caller that has the manifest parsed already.</summary>
    public static InstalledRecord After(Manifest manifest, byte[] manifestBytes, string manifestHash, InstalledRecord? before, bool keepsPreviousTree)
    {
        if (before is not null)
        {
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, before.Version, before.Manifest)
            {
                PreviousManifestHash = before.ManifestHash,
            };
        }

        if (manifest.FromVersion is null || !keepsPreviousTree)
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, manifest.FromVersion, null);
        var previous = new Manifest
        {
            Product = manifest.Product,
            Version = manifest.FromVersion,
            Created = manifest.Created,
            Directories = manifest.BaseDirectories,
            Files = manifest.Base.Select(b => TargetFile.Whole(b.Path, b.Size, b.Sha256)).ToList(),
            Base = [],
            Blobs = [],
        };
        var previousBytes = ManifestCodec.Serialize(previous);
        return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, manifest.FromVersion, previousBytes)
        {
            PreviousManifestHash = ManifestCodec.Hash(previousBytes),
        };
    }
}

internal sealed record FileRow(string Path, string Expected, string? Observed, FileState State);

/// <summary>One step of a layered commit, in execution order.</summary>
/// <param name="Seq">Order of execution; also the name of its entry in the backup area.</param>
/// <param name="Kind">What the step does.</param>
/// <param name="Path">Relative install path.</param>
/// <param name="Expected">SHA-256 of the new content for placed files.</param>
/// <param name="Backup">Whether the old file is linked or copied into the backup area before the commit.</param>
/// <param name="User">The entry displaced is the user's: kept in the preserved folder, never deleted.</param>
/// <param name="State">See <see cref="OpState"/>.</param>
/// <param name="Layer">Which layer of the replace succeeded, for the log and for support.</param>
internal sealed record OpRow(int Seq, LayeredOpKind Kind, string Path, string? Expected, bool Backup, bool User, OpState State, string? Layer = null);

/// <summary>
/// The SQLite journal. WAL with synchronous=FULL: a committed row is on disk when the call returns, which is
/// what lets each file-system step start only after the row that allows it is durable (DESIGN §5 rule 4).
/// Each manifest's bytes are stored once, in <c>manifests</c>, keyed by their SHA-256 (<see cref="ManifestCodec.Hash"/>);
/// <c>tx</c> and <c>installed</c> hold only hashes. Manifests that no pending transaction and no installed row
/// refers to are deleted when the next transaction begins (a finished transaction's row keeps its hash, as history).
/// </summary>
internal sealed class JournalStore : IDisposable
{
    /// <summary>
    /// 2: manifests stored once, by hash. A journal of schema 1 (manifest bytes in <c>tx</c> and <c>installed</c>,
    /// written only by development builds before the first release) is refused, not migrated.
    /// </summary>
    private const int SchemaVersion = 2;
    private readonly SqliteConnection _db;

    private readonly string _path;

    private JournalStore(SqliteConnection db, string path)
    {
        _db = db;
        _path = path;
    }

    /// <summary>
    /// Opens (or creates) the journal. A corrupt journal with no transaction pending holds only history and is
    /// moved aside and recreated; with a transaction pending it is an error, because guessing could mix versions.
    /// </summary>
    public static JournalStore Open(string path, string installDir, bool transactionPending, ILogger log)
    {
        var store = OpenOrReplace(path, transactionPending, log);
        try
        {
            store.CheckInstall(installDir);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
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
    public static JournalStore? OpenForReading(string path, string installDir)
    {
        // Connects and reads the schema: SQLite opens lazily, so a journal it cannot read fails at that first query.
        static (SqliteConnection Db, string? Schema) Connect(string dataSource)
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

        SqliteConnection db;
        string? schema;
        try
        {
            (db, schema) = Connect(path);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 14 or 8 && !File.Exists(path + "-wal")) // SQLITE_CANTOPEN, SQLITE_READONLY
        {
            (db, schema) = Connect(ImmutableUri(path));
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 11 or 26) // SQLITE_CORRUPT, SQLITE_NOTADB
        {
            throw new PatcherException(PatchErrorCode.JournalCorrupt, "the journal is corrupt; the next apply moves it aside when nothing is pending", path, ex);
        }

        var store = new JournalStore(db, path);
        try
        {
            if (schema is null)
            {
                store.Dispose();
                return null;
            }

            CheckSchema(schema, path);
            store.CheckInstall(installDir);
            return store;
        }
        catch
        {
            store.Dispose();
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

    private static JournalStore OpenOrReplace(string path, bool transactionPending, ILogger log)
    {
        try
        {
            return OpenCore(path);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 11 or 26) // SQLITE_CORRUPT, SQLITE_NOTADB
        {
            if (transactionPending)
            {
                throw new PatcherException(PatchErrorCode.JournalCorrupt,
                    $"the journal is corrupt while a transaction is pending; the install was not changed further. Restore or remove '{path}' and check the install with 'patchtool verify-install'", path, ex);
            }

            var aside = path + ".corrupt-" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
            log.LogWarning(PatcherLogEvents.JournalReset, "Journal {Path} is corrupt and no transaction is pending; moved it to {Aside} and starting a new one", path, aside);
            SqliteConnection.ClearAllPools();
            File.Move(path, aside);
            foreach (var suffix in new[] { "-wal", "-shm" })
            {
                if (File.Exists(path + suffix)) File.Move(path + suffix, aside + suffix);
            }

            return OpenCore(path);
        }
    }

    private static JournalStore OpenCore(string path)
    {
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            db.Open();
            Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
            // An existing journal is only read here (Status and refused patches write nothing); a new one is created
            // whole in one SQLite transaction, which also settles two openers creating it at once.
            var schema = ReadSchema(db, null);
            if (schema is null)
            {
                using var t = db.BeginTransaction();
                schema = ReadSchema(db, t);
                if (schema is null)
                {
                    Exec(db, """
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
                        """, t);
                    schema = SchemaVersion.ToString(CultureInfo.InvariantCulture);
                    Exec(db, "INSERT INTO meta(key, value) VALUES('schema', $v)", t, ("$v", schema));
                }

                t.Commit();
            }

            CheckSchema(schema, path);

            return new JournalStore(db, path);
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
        if (schema != SchemaVersion.ToString(CultureInfo.InvariantCulture))
        {
            throw new PatcherException(PatchErrorCode.JournalCorrupt,
                $"journal schema {schema} is not supported (this build reads schema {SchemaVersion}); it was written by another build of Patcher. Let that build finish any pending update, or remove '{path}' (Patcher then no longer knows which version is installed)", path);
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

    /// <summary>
    /// A journal belongs to one install. Two installs sharing a state directory would otherwise recover each
    /// other's transactions (swapping one game's tree into the other's path). Opening only checks; the binding is
    /// written when a transaction begins, so Status, Verify and refused patches write nothing. A journal whose
    /// install has moved away (the old path is gone) may follow it, but only with nothing pending and only when
    /// the new path holds the installed version's files (sizes checked): a vanished install's journal must not
    /// adopt another one.
    /// </summary>
    private void CheckInstall(string installDir)
    {
        _installDir = installDir;
        var bound = Scalar(_db, "SELECT value FROM meta WHERE key='install'");
        var comparison = PathRules.PlatformIgnoresCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (bound is null || string.Equals(bound, installDir, comparison)) return;
        string? reason = null;
        if (Directory.Exists(bound)) reason = "still exists";
        else if (Pending() is { } pending) reason = $"no longer exists but has transaction {pending.Id} pending";
        else if (Installed() is { } installed && !HoldsFilesOf(installDir, ManifestCodec.Deserialize(installed.Manifest)))
            reason = $"no longer exists, and '{installDir}' does not hold its installed version {installed.Version}";
        if (reason is not null)
        {
            throw new PatcherException(PatchErrorCode.StateDirectoryInUse,
                $"the state directory's journal belongs to the install at '{bound}', which {reason}; give each install its own state directory", installDir);
        }
    }

    private static bool HoldsFilesOf(string installDir, Manifest manifest) =>
        manifest.Files.All(f => new FileInfo(PathRules.Join(installDir, f.Path)) is { Exists: true } fi && fi.Length == f.Size);

    private string _installDir = "";

    /// <summary>Whether any transaction was ever begun or any version recorded in this journal.</summary>
    public bool HasHistory() => Scalar(_db, "SELECT CASE WHEN EXISTS(SELECT 1 FROM tx) OR EXISTS(SELECT 1 FROM installed) THEN 1 ELSE 0 END") == "1";

    public TxRecord? Pending()
    {
        using var cmd = _db.CreateCommand();
        // LEFT JOIN: a pending row whose manifest is missing must be reported, never read as "nothing pending".
        cmd.CommandText = """
            SELECT t.id, t.kind, t.product, t.from_version, t.to_version, t.manifest_hash, m.bytes, t.signature, t.key_ids,
                   t.strategy, t.state, t.staging_dev, t.staging_ino, t.keep_previous
            FROM tx t LEFT JOIN manifests m ON m.hash = t.manifest_hash
            WHERE t.state NOT IN ($done, $rolledBack) ORDER BY t.seq DESC LIMIT 1
            """;
        cmd.Parameters.AddWithValue("$done", TxState.Done.ToText());
        cmd.Parameters.AddWithValue("$rolledBack", TxState.RolledBack.ToText());
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        var id = r.GetString(0);
        var hash = r.GetString(5);
        return new TxRecord
        {
            Id = id,
            Kind = JournalText.TxKinds.Parse(r.GetString(1), _path),
            Product = r.GetString(2),
            FromVersion = r.IsDBNull(3) ? null : r.GetString(3),
            ToVersion = r.GetString(4),
            ManifestHash = hash,
            Manifest = r.IsDBNull(6) ? throw MissingManifest($"transaction {id}", hash) : (byte[])r[6],
            Signature = r.IsDBNull(7) ? null : r.GetString(7),
            KeyIds = r.IsDBNull(8) ? null : r.GetString(8),
            Strategy = r.GetString(9),
            State = JournalText.TxStates.Parse(r.GetString(10), _path),
            StagingDevice = unchecked((ulong)r.GetInt64(11)),
            StagingInode = unchecked((ulong)r.GetInt64(12)),
            KeepPrevious = r.GetInt64(13) != 0,
        };
    }

    public InstalledRecord? Installed()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = """
            SELECT i.product, i.version, i.manifest_hash, m.bytes, i.previous_version, i.previous_manifest_hash, p.bytes
            FROM installed i LEFT JOIN manifests m ON m.hash = i.manifest_hash LEFT JOIN manifests p ON p.hash = i.previous_manifest_hash
            WHERE i.id = 1
            """;
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        var hash = r.GetString(2);
        var previousHash = r.IsDBNull(5) ? null : r.GetString(5);
        if (r.IsDBNull(3)) throw MissingManifest("the installed version", hash);
        if (previousHash is not null && r.IsDBNull(6)) throw MissingManifest("the previous version", previousHash);
        return new InstalledRecord(r.GetString(0), r.GetString(1), hash, (byte[])r[3],
            r.IsDBNull(4) ? null : r.GetString(4), previousHash is null ? null : (byte[])r[6])
        {
            PreviousManifestHash = previousHash,
        };
    }

    public void Begin(TxRecord tx)
    {
        if (tx.State != TxState.Started)
            throw new JournalInvariantException($"transaction {tx.Id} cannot begin in state {tx.State.ToText()}; a new transaction is {TxState.Started.ToText()}", _path);
        CrashInjection.Point("journal begin " + tx.Id);
        // The binding, the pruning, the manifest and the transaction row become durable together, in one SQLite transaction.
        using var t = _db.BeginTransaction();
        // Bound (or re-bound after a move, see CheckInstall) just before the first transaction row is written.
        Exec(_db, "INSERT INTO meta(key, value) VALUES('install', $v) ON CONFLICT(key) DO UPDATE SET value = $v", t, ("$v", _installDir));

        // Manifests of transactions that ended before this one began, unless still installed or kept as the
        // previous version: Pending() and Installed() read no others. Done here rather than when a transaction
        // ends, so the last one's rows stay whole for inspection until the next update.
        Exec(_db, """
            DELETE FROM manifests
            WHERE hash <> $hash
              AND hash NOT IN (SELECT manifest_hash FROM tx WHERE state NOT IN ($done, $rolledBack))
              AND hash NOT IN (SELECT manifest_hash FROM installed)
              AND hash NOT IN (SELECT previous_manifest_hash FROM installed WHERE previous_manifest_hash IS NOT NULL)
            """, t, ("$hash", tx.ManifestHash), ("$done", TxState.Done.ToText()), ("$rolledBack", TxState.RolledBack.ToText()));

        StoreManifest(t, tx.ManifestHash, tx.Manifest);
        Exec(_db, """
            INSERT INTO tx(id, seq, kind, product, from_version, to_version, manifest_hash, signature, key_ids, strategy, state, keep_previous, created, updated)
            VALUES($id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tx), $kind, $product, $from, $to, $hash, $sig, $keys, $strategy, $state, $keep, $now, $now)
            """, t,
            ("$id", tx.Id), ("$kind", tx.Kind.ToText()), ("$product", tx.Product), ("$from", tx.FromVersion), ("$to", tx.ToVersion),
            ("$hash", tx.ManifestHash), ("$sig", tx.Signature), ("$keys", tx.KeyIds), ("$strategy", tx.Strategy), ("$state", tx.State.ToText()),
            ("$keep", tx.KeepPrevious ? 1 : 0), ("$now", Now()));

        t.Commit();
    }

    public void SetState(string txId, TxState state)
    {
        CrashInjection.Point($"journal {state.ToText()} {txId}");
        UpdateState(txId, state, null);
    }

    /// <summary>Records the staged tree's identity and moves to backup-complete in one durable step.</summary>
    public void MarkBackupComplete(string txId, ulong device, ulong inode)
    {
        CrashInjection.Point($"journal {TxState.BackupComplete.ToText()} {txId}");
        UpdateState(txId, TxState.BackupComplete, null, ("staging_dev", unchecked((long)device)), ("staging_ino", unchecked((long)inode)));
    }

    /// <summary>
    /// The commit happened: state patched and the installed version switch in one SQLite transaction. The row refers
    /// to manifests by hash; the new one was stored by <see cref="Begin"/> and the previous one is normally the
    /// installed one, so on the usual path no manifest bytes are written here. <paramref name="installIdentity"/> is the
    /// install directory's identity now that the version is in it (<c>InstallIdentity.Establish</c>), recorded in the
    /// same transaction so that the version is never recorded for one directory and the identity for another.
    /// </summary>
    public void MarkPatched(string txId, InstalledRecord installed, string? installIdentity)
    {
        CrashInjection.Point($"journal {TxState.Patched.ToText()} {txId}");
        string? previousHash = null;
        if (installed.PreviousManifest is { } previous)
        {
            previousHash = installed.PreviousManifestHash;
            Debug.Assert(previousHash is null || previousHash == ManifestCodec.Hash(previous), "PreviousManifestHash does not match PreviousManifest");
            previousHash ??= ManifestCodec.Hash(previous);
        }

        using var t = _db.BeginTransaction();
        UpdateState(txId, TxState.Patched, t);
        StoreManifest(t, installed.ManifestHash, installed.Manifest);
        if (installed.PreviousManifest is { } previousBytes) StoreManifest(t, previousHash!, previousBytes);
        Exec(_db, """
            INSERT INTO installed(id, product, version, manifest_hash, previous_version, previous_manifest_hash)
            VALUES(1, $p, $v, $h, $pv, $ph)
            ON CONFLICT(id) DO UPDATE SET product=$p, version=$v, manifest_hash=$h, previous_version=$pv, previous_manifest_hash=$ph
            """, t,
            ("$p", installed.Product), ("$v", installed.Version), ("$h", installed.ManifestHash), ("$pv", installed.PreviousVersion), ("$ph", previousHash));
        if (installIdentity is null) Exec(_db, "DELETE FROM meta WHERE key = 'install_identity'", t);
        else Exec(_db, "INSERT INTO meta(key, value) VALUES('install_identity', $v) ON CONFLICT(key) DO UPDATE SET value = $v", t, ("$v", installIdentity));
        t.Commit();
    }

    /// <summary>The identity of the install directory the installed version was recorded for; null when none was recorded.</summary>
    public string? RecordedInstallIdentity() => Scalar(_db, "SELECT value FROM meta WHERE key = 'install_identity'");

    /// <summary>
    /// Stores a manifest under its hash unless it is already there (then its bytes are not even bound). Stored bytes of
    /// another length under the same hash mean a wrong hash or a damaged journal: refused rather than mixed up.
    /// </summary>
    private void StoreManifest(SqliteTransaction t, string hash, byte[] bytes)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = t;
        // length() of a BLOB column reads the row's header, not its overflow pages.
        cmd.CommandText = "SELECT length(bytes) FROM manifests WHERE hash = $h";
        cmd.Parameters.AddWithValue("$h", hash);
        if (cmd.ExecuteScalar() is long stored)
        {
            if (stored != bytes.Length)
                throw new PatcherException(PatchErrorCode.JournalCorrupt, $"the journal holds a manifest of {stored} bytes under hash {hash}, not the {bytes.Length} bytes given");
            return;
        }

        cmd.CommandText = "INSERT INTO manifests(hash, bytes) VALUES($h, $b)";
        cmd.Parameters.AddWithValue("$b", bytes);
        cmd.ExecuteNonQuery();
    }

    private static PatcherException MissingManifest(string what, string hash) =>
        new(PatchErrorCode.JournalCorrupt, $"the journal does not hold the manifest of {what} (sha256 {hash})");

    /// <summary>Per-file rows, written in one SQLite transaction after the files they describe are durable.</summary>
    public void RecordFiles(string txId, IReadOnlyCollection<FileRow> rows)
    {
        if (rows.Count == 0) return;
        CrashInjection.Point($"journal files {txId}");
        using var t = _db.BeginTransaction();
        using var cmd = _db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = "INSERT OR REPLACE INTO files(tx_id, path, expected_sha256, observed_sha256, state) VALUES($tx, $path, $exp, $obs, $state)";
        var pTx = cmd.Parameters.Add("$tx", SqliteType.Text);
        var pPath = cmd.Parameters.Add("$path", SqliteType.Text);
        var pExp = cmd.Parameters.Add("$exp", SqliteType.Text);
        var pObs = cmd.Parameters.Add("$obs", SqliteType.Text);
        var pState = cmd.Parameters.Add("$state", SqliteType.Text);
        foreach (var row in rows)
        {
            pTx.Value = txId;
            pPath.Value = row.Path;
            pExp.Value = row.Expected;
            pObs.Value = (object?)row.Observed ?? DBNull.Value;
            pState.Value = row.State.ToText();
            cmd.ExecuteNonQuery();
        }

        t.Commit();
    }

    public Dictionary<string, FileRow> Files(string txId)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT path, expected_sha256, observed_sha256, state FROM files WHERE tx_id = $tx";
        cmd.Parameters.AddWithValue("$tx", txId);
        using var r = cmd.ExecuteReader();
        var result = new Dictionary<string, FileRow>(StringComparer.Ordinal);
        while (r.Read())
            result[r.GetString(0)] = new FileRow(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), JournalText.FileStates.Parse(r.GetString(3), _path));
        return result;
    }

    /// <summary>The layered commit's plan, all rows pending, in one SQLite transaction (replacing any earlier plan of the transaction).</summary>
    public void RecordOps(string txId, IReadOnlyList<OpRow> ops)
    {
        CrashInjection.Point($"journal ops {txId}");
        using var t = _db.BeginTransaction();
        Exec(_db, "DELETE FROM layered_ops WHERE tx_id = $tx", t, ("$tx", txId));

        using var cmd = _db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = "INSERT INTO layered_ops(tx_id, seq, kind, path, expected_sha256, backup, user, state) VALUES($tx, $seq, $kind, $path, $exp, $backup, $user, $state)";
        var pTx = cmd.Parameters.Add("$tx", SqliteType.Text);
        var pSeq = cmd.Parameters.Add("$seq", SqliteType.Integer);
        var pKind = cmd.Parameters.Add("$kind", SqliteType.Text);
        var pPath = cmd.Parameters.Add("$path", SqliteType.Text);
        var pExp = cmd.Parameters.Add("$exp", SqliteType.Text);
        var pBackup = cmd.Parameters.Add("$backup", SqliteType.Integer);
        var pUser = cmd.Parameters.Add("$user", SqliteType.Integer);
        var pState = cmd.Parameters.Add("$state", SqliteType.Text);
        foreach (var op in ops)
        {
            pTx.Value = txId;
            pSeq.Value = op.Seq;
            pKind.Value = op.Kind.ToText();
            pPath.Value = op.Path;
            pExp.Value = (object?)op.Expected ?? DBNull.Value;
            pBackup.Value = op.Backup ? 1 : 0;
            pUser.Value = op.User ? 1 : 0;
            pState.Value = op.State.ToText();
            cmd.ExecuteNonQuery();
        }

        t.Commit();
    }

    public List<OpRow> Ops(string txId)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT seq, kind, path, expected_sha256, backup, user, state, layer FROM layered_ops WHERE tx_id = $tx ORDER BY seq";
        cmd.Parameters.AddWithValue("$tx", txId);
        using var r = cmd.ExecuteReader();
        var result = new List<OpRow>();
        while (r.Read())
        {
            result.Add(new OpRow(r.GetInt32(0), JournalText.OpKinds.Parse(r.GetString(1), _path), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                r.GetInt64(4) != 0, r.GetInt64(5) != 0, JournalText.OpStates.Parse(r.GetString(6), _path), r.IsDBNull(7) ? null : r.GetString(7)));
        }

        return result;
    }

    /// <summary>
    /// Every backup is durable: the rows that have one become backed-up and the transaction backup-complete, in
    /// one SQLite transaction, so recovery never sees one without the other.
    /// </summary>
    public void MarkLayeredBackupComplete(string txId)
    {
        CrashInjection.Point($"journal {TxState.BackupComplete.ToText()} {txId}");
        using var t = _db.BeginTransaction();
        Exec(_db, "UPDATE layered_ops SET state = $state WHERE tx_id = $tx AND backup = 1 AND state = $pending", t,
            ("$state", OpState.BackedUp.ToText()), ("$pending", OpState.Pending.ToText()), ("$tx", txId));
        UpdateState(txId, TxState.BackupComplete, t);
        t.Commit();
    }

    /// <summary>
    /// Steps done and durable on disk: their rows advance to replaced, with the lock layer each used, in one SQLite
    /// transaction (one durable commit for a batch of files, not one per file).
    /// </summary>
    public void MarkOpsReplaced(string txId, IReadOnlyList<(int Seq, string? Layer)> done)
    {
        if (done.Count == 0) return;
        CrashInjection.Point($"journal op {done[0].Seq}-{done[^1].Seq} {OpState.Replaced.ToText()} {txId}");
        using var t = _db.BeginTransaction();
        using var cmd = _db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = "UPDATE layered_ops SET state = $state, layer = COALESCE($layer, layer) WHERE tx_id = $tx AND seq = $seq";
        cmd.Parameters.AddWithValue("$state", OpState.Replaced.ToText());
        cmd.Parameters.AddWithValue("$tx", txId);
        var pSeq = cmd.Parameters.Add("$seq", SqliteType.Integer);
        var pLayer = cmd.Parameters.Add("$layer", SqliteType.Text);
        foreach (var (seq, layer) in done)
        {
            pSeq.Value = seq;
            pLayer.Value = (object?)layer ?? DBNull.Value;
            cmd.ExecuteNonQuery();
        }

        t.Commit();
    }

    public void Dispose() => _db.Dispose();

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>Runs one statement, inside <paramref name="t"/> when given; a null parameter value is stored as SQL NULL.</summary>
    private static void Exec(SqliteConnection db, string sql, SqliteTransaction? t = null, params (string Name, object? Value)[] parameters)
    {
        using var cmd = db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Moves a transaction to <paramref name="state"/> (and sets <paramref name="columns"/> with it), inside
    /// <paramref name="t"/> when given. The update only matches a row in a state <see cref="TxStateMachine"/> lets
    /// advance to <paramref name="state"/>; when none matches, nothing changed and the advance is refused.
    /// </summary>
    private void UpdateState(string txId, TxState state, SqliteTransaction? t, params (string Column, object Value)[] columns)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = t;
        var from = TxStateMachine.Before(state);
        var sets = string.Concat(columns.Select(c => $", {c.Column} = ${c.Column}"));
        var allowed = string.Join(", ", from.Select((_, i) => $"$from{i}"));
        cmd.CommandText = $"UPDATE tx SET state = $state{sets}, updated = $now WHERE id = $id AND state IN ({allowed})";
        cmd.Parameters.AddWithValue("$state", state.ToText());
        cmd.Parameters.AddWithValue("$now", Now());
        cmd.Parameters.AddWithValue("$id", txId);
        foreach (var (column, value) in columns) cmd.Parameters.AddWithValue("$" + column, value);
        for (var i = 0; i < from.Count; i++) cmd.Parameters.AddWithValue($"$from{i}", from[i].ToText());
        if (cmd.ExecuteNonQuery() == 1) return;

        cmd.CommandText = "SELECT state FROM tx WHERE id = $id";
        throw new JournalInvariantException(cmd.ExecuteScalar() is string current
            ? $"transaction {txId} cannot advance from {current} to {state.ToText()}"
            : $"transaction {txId} is not in the journal; it cannot advance to {state.ToText()}", _path);
    }

    private static string? Scalar(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar()?.ToString();
    }
}
