using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Manifests;
using static Patching.Journal.JournalSql;

namespace Patching.Journal;

/// <summary>
/// The SQLite journal. WAL with synchronous=FULL: a committed row is on disk when the call returns, which is
/// what lets each file-system step start only after the row that allows it is durable (DESIGN §5 rule 4).
/// Each manifest's bytes are stored once, in <c>manifests</c>, keyed by their SHA-256 (<see cref="ManifestCodec.Hash"/>);
/// <c>tx</c> and <c>installed</c> hold only hashes. Manifests that no pending transaction and no installed row
/// refers to are deleted when the next transaction begins (a finished transaction's row keeps its hash, as history).
/// </summary>
internal sealed partial class JournalStore : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly string _path;
    private readonly string _installDir;
    private readonly TimeProvider _time;

    /// <param name="db">An open connection to a journal of the supported schema.</param>
    /// <param name="path">The journal's file, named in every error.</param>
    /// <param name="installDir">The install this journal is for: checked when opened, bound when a transaction begins.</param>
    /// <param name="time">The clock of the rows' <c>created</c> and <c>updated</c> times (<see cref="PatcherOptions.TimeProvider"/>).</param>
    private JournalStore(SqliteConnection db, string path, string installDir, TimeProvider time)
    {
        _db = db;
        _path = path;
        _installDir = installDir;
        _time = time;
    }

    /// <summary>
    /// Opens (or creates) the journal of the install at <paramref name="installDir"/> (see
    /// <see cref="JournalSchema.OpenForWriting"/>) and checks that it belongs to that install.
    /// </summary>
    public static JournalStore Open(string path, string installDir, bool transactionPending, ILogger log, TimeProvider time) =>
        Checked(new JournalStore(JournalSchema.OpenForWriting(path, transactionPending, log, time), path, installDir, time));

    /// <summary>
    /// Opens the journal only to read it (Status, Verify; see <see cref="JournalSchema.OpenForReading"/>); null when
    /// nothing was ever recorded in it. It writes nothing, so it keeps no clock.
    /// </summary>
    public static JournalStore? OpenForReading(string path, string installDir) =>
        JournalSchema.OpenForReading(path) is { } db ? Checked(new JournalStore(db, path, installDir, TimeProvider.System)) : null;

    /// <summary><paramref name="store"/> once <see cref="CheckInstall"/> passed; disposed when it did not.</summary>
    private static JournalStore Checked(JournalStore store)
    {
        try
        {
            store.CheckInstall();
            return store;
        }
        catch
        {
            store.Dispose();
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
    private void CheckInstall()
    {
        var installDir = _installDir;
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

        var progress = HasProgressTable();
        using var t = _db.BeginTransaction();
        UpdateState(txId, TxState.Patched, t);
        // The rebuilt contents are in the committed tree: their progress records describe nothing any more.
        if (progress) Exec(_db, "DELETE FROM content_progress", t);
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

    public void Dispose() => _db.Dispose();

    /// <summary>The time written into a row, round-trip format in UTC.</summary>
    private string Now() => _time.GetUtcNow().ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

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
}
