using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Manifests;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// A journal's database read and written with plain SQL, the stored texts spelt out, as a build of Patcher that
/// predates the journal's enums wrote them.
/// </summary>
internal static class RawJournal
{
    public static readonly byte[] Manifest = ManifestCodec.Serialize(new Manifest
    {
        Product = "demo-game",
        Version = "2.0.0",
        FromVersion = "1.0.0",
        Created = DateTimeOffset.UnixEpoch,
        Directories = [],
        Files = [],
        Base = [],
        Blobs = [],
    });

    /// <summary>Creates the journal's tables (through the store), then one transaction row with the texts given.</summary>
    public static void WriteTx(string db, string install, string id, string kind, string state)
    {
        using (JournalStore.Open(db, install, transactionPending: false, NullLogger.Instance, TimeProvider.System))
        {
        }

        var hash = ManifestCodec.Hash(Manifest);
        Exec(db, $"INSERT INTO manifests(hash, bytes) VALUES('{hash}', X'{Convert.ToHexString(Manifest)}')");
        Exec(db, $"""
            INSERT INTO tx(id, seq, kind, product, from_version, to_version, manifest_hash, strategy, state, created, updated)
            VALUES('{id}', 1, '{kind}', 'demo-game', '1.0.0', '2.0.0', '{hash}', 'swap', '{state}', '2026-01-01T00:00:00.0000000+00:00', '2026-01-01T00:00:00.0000000+00:00')
            """);
    }

    public static void Exec(string db, string sql)
    {
        using var c = Connect(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>The first column of every row, as text.</summary>
    public static List<string> Column(string db, string sql)
    {
        using var c = Connect(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var result = new List<string>();
        while (r.Read()) result.Add(r.GetValue(0).ToString()!);
        return result;
    }

    /// <summary>The progress records of rebuilt contents, content (SHA-256) to how many operations wrote its recorded prefix.</summary>
    public static Dictionary<string, int> ProgressRecords(string db)
    {
        if (!File.Exists(db) || Column(db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'content_progress'").Count == 0) return [];
        return Column(db, "SELECT sha256 || ' ' || ops FROM content_progress").Select(r => r.Split(' '))
            .ToDictionary(r => r[0], r => int.Parse(r[1], System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);
    }

    /// <summary>
    /// Whether a state directory's <c>partial/</c> (its entries' names) holds anything that is not a content kept for the
    /// next apply, i.e. named by a progress record of the journal: only such contents may survive a recovery or a cancel.
    /// </summary>
    public static bool PartialHoldsUnrecorded(IEnumerable<string> partialNames, string db)
    {
        var recorded = ProgressRecords(db);
        return recorded.Count == 0 || partialNames.Any(n => !recorded.ContainsKey(n));
    }

    private static SqliteConnection Connect(string db)
    {
        var c = new SqliteConnection($"Data Source={db};Pooling=False");
        c.Open();
        return c;
    }
}
