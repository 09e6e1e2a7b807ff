using System.Globalization;
using Patching.IO;
using static Patching.Journal.JournalSql;

namespace Patching.Journal;

/// <summary>
/// How far the rebuilding of one content got: its first operations wrote the first bytes of its partial file, which
/// were fsynced before this record was written. A local fingerprint of bytes this process wrote and verified (each operation against
/// its signed SHA-256), never a stand-in for the signed hash: the whole content is still checked against its SHA-256
/// before it is used.
/// </summary>
/// <param name="Sha256">The content (a recipe of the patch), by its signed SHA-256.</param>
/// <param name="ManifestHash">The patch whose recipe this is: a record of another patch is never resumed from.</param>
/// <param name="Ops">How many of the recipe's operations wrote the prefix.</param>
/// <param name="Length">The prefix's length in bytes.</param>
/// <param name="PrefixXxHash128">XxHash128 of the prefix.</param>
internal sealed record ContentProgress(string Sha256, string ManifestHash, int Ops, long Length, byte[] PrefixXxHash128);

/// <summary>
/// Records of rebuilt contents' progress (<c>content_progress</c>), written while receiving, before the transaction has
/// a row. The table is made by the first record, so a journal that never rebuilt a large content has none (and a
/// journal written by a build without resumable contents needs no migration).
/// </summary>
internal sealed partial class JournalStore
{
    private const string ProgressTable = """
        CREATE TABLE IF NOT EXISTS content_progress(
            sha256 TEXT PRIMARY KEY, manifest_hash TEXT NOT NULL, ops INTEGER NOT NULL, length INTEGER NOT NULL, xxh128 BLOB NOT NULL)
        """;

    /// <summary>Records <paramref name="progress"/> durably (replacing the content's earlier record). Call only once its bytes are fsynced.</summary>
    public void RecordProgress(ContentProgress progress)
    {
        CrashInjection.Point($"journal progress {progress.Sha256[..12]} {progress.Ops.ToString(CultureInfo.InvariantCulture)}");
        using var t = _db.BeginTransaction();
        Exec(_db, ProgressTable, t);
        Exec(_db, "INSERT OR REPLACE INTO content_progress(sha256, manifest_hash, ops, length, xxh128) VALUES($s, $m, $o, $l, $x)", t,
            ("$s", progress.Sha256), ("$m", progress.ManifestHash), ("$o", progress.Ops), ("$l", progress.Length), ("$x", progress.PrefixXxHash128));
        t.Commit();
    }

    /// <summary>The progress records of patch <paramref name="manifestHash"/>, by content; the records of any other patch are deleted.</summary>
    public Dictionary<string, ContentProgress> ProgressOf(string manifestHash)
    {
        var result = new Dictionary<string, ContentProgress>(StringComparer.Ordinal);
        if (!HasProgressTable()) return result;
        Exec(_db, "DELETE FROM content_progress WHERE manifest_hash <> $m", null, ("$m", manifestHash));
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT sha256, ops, length, xxh128 FROM content_progress WHERE manifest_hash = $m";
        cmd.Parameters.AddWithValue("$m", manifestHash);
        using var r = cmd.ExecuteReader();
        while (r.Read())
            result[r.GetString(0)] = new ContentProgress(r.GetString(0), manifestHash, r.GetInt32(1), r.GetInt64(2), (byte[])r.GetValue(3));
        return result;
    }

    /// <summary>The contents (by SHA-256) some progress record describes, of whichever patch: the partial files worth keeping.</summary>
    public HashSet<string> RecordedContents()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (!HasProgressTable()) return result;
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT sha256 FROM content_progress";
        using var r = cmd.ExecuteReader();
        while (r.Read()) result.Add(r.GetString(0));
        return result;
    }

    /// <summary>Deletes every progress record: what they describe was used, discarded or refused.</summary>
    public void ForgetProgress()
    {
        if (HasProgressTable()) Exec(_db, "DELETE FROM content_progress");
    }

    private bool HasProgressTable() =>
        Scalar(_db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'content_progress'") != "0";
}
