using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Manifests;

namespace Patching.Journal;

/// <summary>Journal states of a transaction (DESIGN §4).</summary>
internal static class TxState
{
    public const string Started = "started";
    public const string BackupComplete = "backup-complete";
    public const string Patched = "patched";
    /// <summary>Layered only: a commit that had started changing files is being undone; recovery must finish undoing it.</summary>
    public const string RollingBack = "rolling-back";
    public const string Done = "done";
    public const string RolledBack = "rolled-back";
}

internal static class TxKind
{
    public const string Apply = "apply";
    public const string Rollback = "rollback";
}

internal sealed record TxRecord
{
    public required string Id { get; init; }
    public required string Kind { get; init; }
    public required string Product { get; init; }
    public string? FromVersion { get; init; }
    public required string ToVersion { get; init; }
    public required string ManifestHash { get; init; }
    public required byte[] Manifest { get; init; }
    public string? Signature { get; init; }
    public string? KeyIds { get; init; }
    public required string Strategy { get; init; }
    public required string State { get; init; }
    public bool KeepPrevious { get; init; }
    public ulong StagingDevice { get; init; }
    public ulong StagingInode { get; init; }
}

internal sealed record InstalledRecord(string Product, string Version, string ManifestHash, byte[] Manifest,
    string? PreviousVersion, byte[]? PreviousManifest)
{
    /// <summary>
    /// The installed row once <paramref name="manifestBytes"/> is committed over <paramref name="before"/>.
    /// When Patcher did not install the old version itself (no row yet), the old version is described by the
    /// patch's own base list, so a kept previous version can still be rolled back to.
    /// </summary>
    public static InstalledRecord After(byte[] manifestBytes, string manifestHash, InstalledRecord? before)
    {
        var manifest = ManifestCodec.Deserialize(manifestBytes);
        if (before is not null)
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, before.Version, before.Manifest);
        if (manifest.FromVersion is null)
            return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, null, null);
        var previous = new Manifest
        {
            Product = manifest.Product,
            Version = manifest.FromVersion,
            Created = manifest.Created,
            Directories = manifest.BaseDirectories,
            Files = manifest.Base.Select(b => new TargetFile
            {
                Path = b.Path,
                Size = b.Size,
                Sha256 = b.Sha256,
                Parts = b.Size == 0 ? [] : [new ContentPart { Sha256 = b.Sha256, Size = b.Size }],
            }).ToList(),
            Base = [],
            Blobs = [],
        };
        return new InstalledRecord(manifest.Product, manifest.Version, manifestHash, manifestBytes, manifest.FromVersion, ManifestCodec.Serialize(previous));
    }
}

internal sealed record FileRow(string Path, string Expected, string? Observed, string State);

/// <summary>Per-file states of the layered commit (DESIGN §4): pending → backed-up → replaced.</summary>
internal static class OpState
{
    /// <summary>Planned; the disk may or may not show its effect yet (recovery looks).</summary>
    public const string Pending = "pending";
    /// <summary>The old file is preserved in the backup area (hard link or copy), the install is unchanged.</summary>
    public const string BackedUp = "backed-up";
    /// <summary>The step is done and durable.</summary>
    public const string Replaced = "replaced";
}

/// <summary>One step of a layered commit, in execution order.</summary>
/// <param name="Seq">Order of execution; also the name of its entry in the backup area.</param>
/// <param name="Kind">See <c>LayeredOpKind</c>.</param>
/// <param name="Path">Relative install path.</param>
/// <param name="Expected">SHA-256 of the new content for placed files.</param>
/// <param name="Backup">Whether the old file is linked or copied into the backup area before the commit.</param>
/// <param name="User">The entry displaced is the user's: kept in the preserved folder, never deleted.</param>
/// <param name="State">See <see cref="OpState"/>.</param>
/// <param name="Layer">Which layer of the replace succeeded, for the log and for support.</param>
internal sealed record OpRow(int Seq, string Kind, string Path, string? Expected, bool Backup, bool User, string State, string? Layer = null);

/// <summary>
/// The SQLite journal. WAL with synchronous=FULL: a committed row is on disk when the call returns, which is
/// what lets each file-system step start only after the row that allows it is durable (DESIGN §5 rule 4).
/// </summary>
internal sealed class JournalStore : IDisposable
{
    private const int SchemaVersion = 1;
    private readonly SqliteConnection _db;

    private JournalStore(SqliteConnection db) => _db = db;

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
            log.LogWarning("Journal {Path} is corrupt and no transaction is pending; moved it to {Aside} and starting a new one", path, aside);
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
            Exec(db, """
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS tx(
                    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, product TEXT NOT NULL,
                    from_version TEXT, to_version TEXT NOT NULL, manifest_hash TEXT NOT NULL, manifest BLOB NOT NULL,
                    signature TEXT, key_ids TEXT, strategy TEXT NOT NULL, state TEXT NOT NULL,
                    keep_previous INTEGER NOT NULL DEFAULT 0, staging_dev INTEGER NOT NULL DEFAULT 0, staging_ino INTEGER NOT NULL DEFAULT 0,
                    created TEXT NOT NULL, updated TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS files(
                    tx_id TEXT NOT NULL, path TEXT NOT NULL, expected_sha256 TEXT NOT NULL, observed_sha256 TEXT,
                    state TEXT NOT NULL, PRIMARY KEY(tx_id, path));
                CREATE TABLE IF NOT EXISTS installed(
                    id INTEGER PRIMARY KEY CHECK (id = 1), product TEXT NOT NULL, version TEXT NOT NULL,
                    manifest_hash TEXT NOT NULL, manifest BLOB NOT NULL, previous_version TEXT, previous_manifest BLOB);
                CREATE TABLE IF NOT EXISTS layered_ops(
                    tx_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, expected_sha256 TEXT,
                    backup INTEGER NOT NULL, user INTEGER NOT NULL, state TEXT NOT NULL, layer TEXT, PRIMARY KEY(tx_id, seq));
                INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');
                """);
            var schema = Scalar(db, "SELECT value FROM meta WHERE key='schema'");
            if (schema != SchemaVersion.ToString(CultureInfo.InvariantCulture))
                throw new PatcherException(PatchErrorCode.JournalCorrupt, $"journal schema {schema} is not supported", path);
            return new JournalStore(db);
        }
        catch
        {
            db.Dispose();
            throw;
        }
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
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
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

    public TxRecord? Pending()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, kind, product, from_version, to_version, manifest_hash, manifest, signature, key_ids, strategy, state, staging_dev, staging_ino, keep_previous FROM tx WHERE state NOT IN ('done','rolled-back') ORDER BY seq DESC LIMIT 1";
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return new TxRecord
        {
            Id = r.GetString(0),
            Kind = r.GetString(1),
            Product = r.GetString(2),
            FromVersion = r.IsDBNull(3) ? null : r.GetString(3),
            ToVersion = r.GetString(4),
            ManifestHash = r.GetString(5),
            Manifest = (byte[])r[6],
            Signature = r.IsDBNull(7) ? null : r.GetString(7),
            KeyIds = r.IsDBNull(8) ? null : r.GetString(8),
            Strategy = r.GetString(9),
            State = r.GetString(10),
            StagingDevice = unchecked((ulong)r.GetInt64(11)),
            StagingInode = unchecked((ulong)r.GetInt64(12)),
            KeepPrevious = r.GetInt64(13) != 0,
        };
    }

    public InstalledRecord? Installed()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT product, version, manifest_hash, manifest, previous_version, previous_manifest FROM installed WHERE id = 1";
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return new InstalledRecord(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r[3],
            r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : (byte[])r[5]);
    }

    public void Begin(TxRecord tx)
    {
        CrashInjection.Point("journal begin " + tx.Id);
        using (var bind = _db.CreateCommand())
        {
            // Bound (or re-bound after a move, see CheckInstall) just before the first transaction row is written.
            bind.CommandText = "INSERT INTO meta(key, value) VALUES('install', $v) ON CONFLICT(key) DO UPDATE SET value = $v";
            bind.Parameters.AddWithValue("$v", _installDir);
            bind.ExecuteNonQuery();
        }

        using var cmd = _db.CreateCommand();
        cmd.CommandText = """
            INSERT INTO tx(id, seq, kind, product, from_version, to_version, manifest_hash, manifest, signature, key_ids, strategy, state, keep_previous, created, updated)
            VALUES($id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tx), $kind, $product, $from, $to, $hash, $manifest, $sig, $keys, $strategy, $state, $keep, $now, $now)
            """;
        cmd.Parameters.AddWithValue("$id", tx.Id);
        cmd.Parameters.AddWithValue("$kind", tx.Kind);
        cmd.Parameters.AddWithValue("$product", tx.Product);
        cmd.Parameters.AddWithValue("$from", (object?)tx.FromVersion ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$to", tx.ToVersion);
        cmd.Parameters.AddWithValue("$hash", tx.ManifestHash);
        cmd.Parameters.AddWithValue("$manifest", tx.Manifest);
        cmd.Parameters.AddWithValue("$sig", (object?)tx.Signature ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$keys", (object?)tx.KeyIds ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$strategy", tx.Strategy);
        cmd.Parameters.AddWithValue("$state", tx.State);
        cmd.Parameters.AddWithValue("$keep", tx.KeepPrevious ? 1 : 0);
        cmd.Parameters.AddWithValue("$now", Now());
        cmd.ExecuteNonQuery();
    }

    public void SetState(string txId, string state)
    {
        CrashInjection.Point($"journal {state} {txId}");
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "UPDATE tx SET state = $state, updated = $now WHERE id = $id";
        cmd.Parameters.AddWithValue("$state", state);
        cmd.Parameters.AddWithValue("$now", Now());
        cmd.Parameters.AddWithValue("$id", txId);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Records the staged tree's identity and moves to backup-complete in one durable step.</summary>
    public void MarkBackupComplete(string txId, ulong device, ulong inode)
    {
        CrashInjection.Point($"journal {TxState.BackupComplete} {txId}");
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "UPDATE tx SET state = $state, staging_dev = $dev, staging_ino = $ino, updated = $now WHERE id = $id";
        cmd.Parameters.AddWithValue("$state", TxState.BackupComplete);
        cmd.Parameters.AddWithValue("$dev", unchecked((long)device));
        cmd.Parameters.AddWithValue("$ino", unchecked((long)inode));
        cmd.Parameters.AddWithValue("$now", Now());
        cmd.Parameters.AddWithValue("$id", txId);
        cmd.ExecuteNonQuery();
    }

    /// <summary>The commit happened: state patched and the installed version switch in one SQLite transaction.</summary>
    public void MarkPatched(string txId, InstalledRecord installed)
    {
        CrashInjection.Point($"journal {TxState.Patched} {txId}");
        using var t = _db.BeginTransaction();
        using (var cmd = _db.CreateCommand())
        {
            cmd.Transaction = t;
            cmd.CommandText = "UPDATE tx SET state = $state, updated = $now WHERE id = $id";
            cmd.Parameters.AddWithValue("$state", TxState.Patched);
            cmd.Parameters.AddWithValue("$now", Now());
            cmd.Parameters.AddWithValue("$id", txId);
            cmd.ExecuteNonQuery();
        }

        using (var cmd = _db.CreateCommand())
        {
            cmd.Transaction = t;
            cmd.CommandText = """
                INSERT INTO installed(id, product, version, manifest_hash, manifest, previous_version, previous_manifest)
                VALUES(1, $p, $v, $h, $m, $pv, $pm)
                ON CONFLICT(id) DO UPDATE SET product=$p, version=$v, manifest_hash=$h, manifest=$m, previous_version=$pv, previous_manifest=$pm
                """;
            cmd.Parameters.AddWithValue("$p", installed.Product);
            cmd.Parameters.AddWithValue("$v", installed.Version);
            cmd.Parameters.AddWithValue("$h", installed.ManifestHash);
            cmd.Parameters.AddWithValue("$m", installed.Manifest);
            cmd.Parameters.AddWithValue("$pv", (object?)installed.PreviousVersion ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$pm", (object?)installed.PreviousManifest ?? DBNull.Value);
            cmd.ExecuteNonQuery();
        }

        t.Commit();
    }

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
            pState.Value = row.State;
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
            result[r.GetString(0)] = new FileRow(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetString(3));
        return result;
    }

    /// <summary>The layered commit's plan, all rows pending, in one SQLite transaction (replacing any earlier plan of the transaction).</summary>
    public void RecordOps(string txId, IReadOnlyList<OpRow> ops)
    {
        CrashInjection.Point($"journal ops {txId}");
        using var t = _db.BeginTransaction();
        using (var del = _db.CreateCommand())
        {
            del.Transaction = t;
            del.CommandText = "DELETE FROM layered_ops WHERE tx_id = $tx";
            del.Parameters.AddWithValue("$tx", txId);
            del.ExecuteNonQuery();
        }

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
            pKind.Value = op.Kind;
            pPath.Value = op.Path;
            pExp.Value = (object?)op.Expected ?? DBNull.Value;
            pBackup.Value = op.Backup ? 1 : 0;
            pUser.Value = op.User ? 1 : 0;
            pState.Value = op.State;
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
            result.Add(new OpRow(r.GetInt32(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                r.GetInt64(4) != 0, r.GetInt64(5) != 0, r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7)));
        }

        return result;
    }

    /// <summary>
    /// Every backup is durable: the rows that have one become backed-up and the transaction backup-complete, in
    /// one SQLite transaction, so recovery never sees one without the other.
    /// </summary>
    public void MarkLayeredBackupComplete(string txId)
    {
        CrashInjection.Point($"journal {TxState.BackupComplete} {txId}");
        using var t = _db.BeginTransaction();
        using (var cmd = _db.CreateCommand())
        {
            cmd.Transaction = t;
            cmd.CommandText = "UPDATE layered_ops SET state = $state WHERE tx_id = $tx AND backup = 1 AND state = $pending";
            cmd.Parameters.AddWithValue("$state", OpState.BackedUp);
            cmd.Parameters.AddWithValue("$pending", OpState.Pending);
            cmd.Parameters.AddWithValue("$tx", txId);
            cmd.ExecuteNonQuery();
        }

        using (var cmd = _db.CreateCommand())
        {
            cmd.Transaction = t;
            cmd.CommandText = "UPDATE tx SET state = $state, updated = $now WHERE id = $id";
            cmd.Parameters.AddWithValue("$state", TxState.BackupComplete);
            cmd.Parameters.AddWithValue("$now", Now());
            cmd.Parameters.AddWithValue("$id", txId);
            cmd.ExecuteNonQuery();
        }

        t.Commit();
    }

    /// <summary>One file's step is done and durable on disk: its row advances (one durable SQLite commit per file).</summary>
    public void SetOpState(string txId, int seq, string state, string? layer = null)
    {
        CrashInjection.Point($"journal op {seq} {state} {txId}");
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "UPDATE layered_ops SET state = $state, layer = COALESCE($layer, layer) WHERE tx_id = $tx AND seq = $seq";
        cmd.Parameters.AddWithValue("$state", state);
        cmd.Parameters.AddWithValue("$layer", (object?)layer ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$tx", txId);
        cmd.Parameters.AddWithValue("$seq", seq);
        cmd.ExecuteNonQuery();
    }

    public void Dispose() => _db.Dispose();

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    private static void Exec(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static string? Scalar(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar()?.ToString();
    }
}
