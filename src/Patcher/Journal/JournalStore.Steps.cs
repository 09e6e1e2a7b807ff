using Microsoft.Data.Sqlite;
using Patching.IO;
using static Patching.Journal.JournalSql;

namespace Patching.Journal;

/// <summary>The per-file rows of staging and the steps of the layered commit.</summary>
internal sealed partial class JournalStore
{
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
}
