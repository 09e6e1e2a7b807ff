using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Journal;

/// <summary>
/// The SQLite journal stores each manifest's bytes once, keyed by hash (schema 2): <c>tx</c> and <c>installed</c>
/// refer to them, and <see cref="JournalStore.Pending"/> and <see cref="JournalStore.Installed"/> still return the bytes.
/// </summary>
public sealed class JournalStoreTests
{
    private static JournalStore Open(TempDir dir, string? path = null) =>
        JournalStore.Open(path ?? Db(dir), dir["game"], transactionPending: false, NullLogger.Instance, TimeProvider.System);

    private static string Db(TempDir dir) => dir["journal.db"];

    /// <summary>Manifest bytes naming <paramref name="marker"/> in one file path (and nowhere else).</summary>
    private static byte[] ManifestBytes(string version, string? fromVersion = null, string marker = "m", int files = 3) =>
        ManifestCodec.Serialize(new Manifest
        {
            Product = "demo-game",
            Version = version,
            FromVersion = fromVersion,
            Created = DateTimeOffset.UnixEpoch,
            Directories = ["data"],
            Files = Enumerable.Range(0, files).Select(i => new TargetFile
            {
                Path = i == 0 ? $"data/{marker}.pak" : $"data/file{i:D5}.pak",
                Size = 1,
                Sha256 = new string('a', 64),
                Parts = [new ContentPart { Sha256 = new string('a', 64), Size = 1 }],
            }).ToList(),
            Base = fromVersion is null ? [] : [new BaseFile { Path = "data/old.pak", Size = 2, Sha256 = new string('b', 64) }],
            BaseDirectories = fromVersion is null ? [] : ["data"],
            Blobs = [],
        });

    private static TxRecord Tx(string id, byte[] manifest, string to = "2.0.0", string? from = "1.0.0") => new()
    {
        Id = id,
        Kind = TxKind.Apply,
        Product = "demo-game",
        FromVersion = from,
        ToVersion = to,
        ManifestHash = ManifestCodec.Hash(manifest),
        Manifest = manifest,
        Strategy = "swap",
        State = TxState.Started,
    };

    /// <summary>Begin, backup-complete, patched, done: what one successful apply writes.</summary>
    private static void ApplyThrough(JournalStore store, string id, byte[] manifest, string to, bool keepsPreviousTree = true)
    {
        var before = store.Installed();
        store.Begin(Tx(id, manifest, to, before?.Version));
        store.MarkBackupComplete(id, 1, 2);
        store.MarkPatched(id, InstalledRecord.After(manifest, ManifestCodec.Hash(manifest), before, keepsPreviousTree), installIdentity: null);
        store.SetState(id, TxState.Done);
    }

    private static SqliteConnection Raw(TempDir dir)
    {
        var db = new SqliteConnection($"Data Source={Db(dir)};Pooling=False");
        db.Open();
        return db;
    }

    private static long Long(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return (long)cmd.ExecuteScalar()!;
    }

    private static List<string> StoredHashes(TempDir dir)
    {
        using var db = Raw(dir);
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT hash FROM manifests ORDER BY hash";
        using var r = cmd.ExecuteReader();
        var result = new List<string>();
        while (r.Read()) result.Add(r.GetString(0));
        return result;
    }

    private static int Occurrences(byte[] haystack, byte[] needle)
    {
        var count = 0;
        var span = haystack.AsSpan();
        for (var i = span.IndexOf(needle); i >= 0; i = span.IndexOf(needle))
        {
            count++;
            span = span[(i + needle.Length)..];
        }

        return count;
    }

    [Test]
    public void MarkPatched_AfterBegin_ManifestBytesAppearOnceInDatabaseFile()
    {
        using var dir = TempDir.ForCurrentTest();
        var marker = "marker" + Guid.NewGuid().ToString("N")[..12];
        var manifest = ManifestBytes("2.0.0", marker: marker);
        using (var store = Open(dir))
        {
            store.Begin(Tx("tx-1", manifest, from: null));
            store.MarkBackupComplete("tx-1", 1, 2);
            store.MarkPatched("tx-1", InstalledRecord.After(manifest, ManifestCodec.Hash(manifest), before: null, keepsPreviousTree: true), installIdentity: null);
        }

        using (var db = Raw(dir))
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
            cmd.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        Assert.That(Occurrences(File.ReadAllBytes(Db(dir)), Encoding.UTF8.GetBytes(marker)), Is.EqualTo(1),
            "the tx row (begin) and the installed row (patched) must not each hold a copy of the manifest");
    }

    [Test]
    public void Open_NewJournal_NoTransactionOrInstalledColumnHoldsManifestBytes()
    {
        using var dir = TempDir.ForCurrentTest();
        using (Open(dir))
        {
        }

        using var db = Raw(dir);
        Assert.That(Long(db, "SELECT count(*) FROM pragma_table_info('tx') WHERE name LIKE '%manifest' OR type = 'BLOB'"), Is.EqualTo(0));
        Assert.That(Long(db, "SELECT count(*) FROM pragma_table_info('installed') WHERE name LIKE '%manifest' OR type = 'BLOB'"), Is.EqualTo(0));
        Assert.That(Long(db, "SELECT count(*) FROM pragma_table_info('manifests') WHERE name = 'bytes' AND type = 'BLOB'"), Is.EqualTo(1));
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key = 'schema'";
        Assert.That(cmd.ExecuteScalar(), Is.EqualTo("2"));
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.That(cmd.ExecuteScalar(), Is.EqualTo("wal"));
    }

    [Test]
    public void Pending_AfterBegin_ReturnsManifestBytesAndHash()
    {
        using var dir = TempDir.ForCurrentTest();
        var manifest = ManifestBytes("2.0.0", "1.0.0");
        using var store = Open(dir);
        store.Begin(Tx("tx-1", manifest));

        var pending = store.Pending();

        Assert.That(pending, Is.Not.Null);
        Assert.That(pending!.Manifest, Is.EqualTo(manifest));
        Assert.That(pending.ManifestHash, Is.EqualTo(ManifestCodec.Hash(manifest)));
        Assert.That((pending.Id, pending.State, pending.ToVersion), Is.EqualTo(("tx-1", TxState.Started, "2.0.0")));
    }

    [Test]
    public void Begin_SameManifestForTwoTransactions_StoredOnce()
    {
        using var dir = TempDir.ForCurrentTest();
        var manifest = ManifestBytes("2.0.0", "1.0.0");
        using (var store = Open(dir))
        {
            store.Begin(Tx("tx-1", manifest));
            store.Begin(Tx("tx-2", manifest));
            Assert.That(store.Pending()!.Manifest, Is.EqualTo(manifest));
        }

        Assert.That(StoredHashes(dir), Is.EqualTo(new[] { ManifestCodec.Hash(manifest) }));
    }

    [Test]
    public void MarkPatched_UpdateOverInstalledVersion_WritesNoThirdManifestAndReadsBothBack()
    {
        using var dir = TempDir.ForCurrentTest();
        var v1 = ManifestBytes("1.0.0");
        var v2 = ManifestBytes("2.0.0", "1.0.0", files: 500);
        using (var store = Open(dir))
        {
            ApplyThrough(store, "tx-1", v1, "1.0.0");
            ApplyThrough(store, "tx-2", v2, "2.0.0");

            var installed = store.Installed()!;
            Assert.That((installed.Product, installed.Version, installed.PreviousVersion), Is.EqualTo(("demo-game", "2.0.0", "1.0.0")));
            Assert.That(installed.Manifest, Is.EqualTo(v2));
            Assert.That(installed.ManifestHash, Is.EqualTo(ManifestCodec.Hash(v2)));
            Assert.That(installed.PreviousManifest, Is.EqualTo(v1));
            Assert.That(installed.PreviousManifestHash, Is.EqualTo(ManifestCodec.Hash(v1)));
        }

        Assert.That(StoredHashes(dir), Is.EquivalentTo(new[] { ManifestCodec.Hash(v1), ManifestCodec.Hash(v2) }));
        using var db = Raw(dir);
        Assert.That(Long(db, "SELECT sum(length(bytes)) FROM manifests"), Is.EqualTo(v1.Length + v2.Length));
    }

    [Test]
    public void MarkPatched_FirstInstallOfUpdatePackage_PreviousDescribedByBaseIsStoredUnderItsHash()
    {
        using var dir = TempDir.ForCurrentTest();
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        using var store = Open(dir);
        ApplyThrough(store, "tx-1", v2, "2.0.0");

        var installed = store.Installed()!;

        Assert.That(installed.PreviousVersion, Is.EqualTo("1.0.0"));
        Assert.That(installed.PreviousManifest, Is.Not.Null);
        Assert.That(installed.PreviousManifestHash, Is.EqualTo(ManifestCodec.Hash(installed.PreviousManifest!)));
        var previous = ManifestCodec.Deserialize(installed.PreviousManifest!);
        Assert.That(previous.Files.Select(f => f.Path), Is.EqualTo(new[] { "data/old.pak" }));
        Assert.That(StoredHashes(dir), Has.Count.EqualTo(2));
    }

    [Test]
    public void MarkPatched_FirstUpdateNotKeepingTheOldTree_PreviousVersionRecordedWithoutAManifest()
    {
        using var dir = TempDir.ForCurrentTest();
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        using var store = Open(dir);
        ApplyThrough(store, "tx-1", v2, "2.0.0", keepsPreviousTree: false);

        var installed = store.Installed()!;

        Assert.That(installed.PreviousVersion, Is.EqualTo("1.0.0"));
        Assert.That(installed.PreviousManifest, Is.Null);
        Assert.That(StoredHashes(dir), Is.EqualTo(new[] { ManifestCodec.Hash(v2) }));
    }

    [Test]
    public void MarkPatched_PreviousManifestWithoutHash_HashedAndStored()
    {
        using var dir = TempDir.ForCurrentTest();
        var v1 = ManifestBytes("1.0.0");
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        using var store = Open(dir);
        store.Begin(Tx("rb-1", v1, to: "1.0.0", from: "2.0.0"));
        store.MarkBackupComplete("rb-1", 1, 2);

        // As the rollback to a kept version builds it: no PreviousManifestHash, and bytes the journal has not seen.
        store.MarkPatched("rb-1", new InstalledRecord("demo-game", "1.0.0", ManifestCodec.Hash(v1), v1, "2.0.0", v2), installIdentity: null);

        var installed = store.Installed()!;
        Assert.That(installed.PreviousManifest, Is.EqualTo(v2));
        Assert.That(installed.PreviousManifestHash, Is.EqualTo(ManifestCodec.Hash(v2)));
        Assert.That(StoredHashes(dir), Is.EquivalentTo(new[] { ManifestCodec.Hash(v1), ManifestCodec.Hash(v2) }));
    }

    [Test]
    public void Begin_AfterFinishedUpdates_DropsManifestsNothingRefersTo()
    {
        using var dir = TempDir.ForCurrentTest();
        var v1 = ManifestBytes("1.0.0");
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        var v3 = ManifestBytes("3.0.0", "2.0.0");
        var v4 = ManifestBytes("4.0.0", "3.0.0");
        using (var store = Open(dir))
        {
            ApplyThrough(store, "tx-1", v1, "1.0.0");
            ApplyThrough(store, "tx-2", v2, "2.0.0");
            ApplyThrough(store, "tx-3", v3, "3.0.0");
            Assert.That(StoredHashes(dir), Has.Count.EqualTo(3), "v1 stays until the next transaction begins");

            store.Begin(Tx("tx-4", v4, "4.0.0", "3.0.0"));

            Assert.That(store.Installed()!.PreviousManifest, Is.EqualTo(v2));
            Assert.That(store.Pending()!.Manifest, Is.EqualTo(v4));
        }

        Assert.That(StoredHashes(dir), Is.EquivalentTo(new[] { ManifestCodec.Hash(v2), ManifestCodec.Hash(v3), ManifestCodec.Hash(v4) }),
            "v1 is neither installed, nor the previous version, nor pending");
        using var db = Raw(dir);
        Assert.That(Long(db, "SELECT count(*) FROM tx"), Is.EqualTo(4), "history rows stay");
    }

    [Test]
    public void Begin_AfterRollback_DropsTheAbandonedManifestOnly()
    {
        using var dir = TempDir.ForCurrentTest();
        var v1 = ManifestBytes("1.0.0");
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        var v3 = ManifestBytes("3.0.0", "1.0.0");
        using var store = Open(dir);
        ApplyThrough(store, "tx-1", v1, "1.0.0");
        store.Begin(Tx("tx-2", v2));
        store.SetState("tx-2", TxState.RolledBack);
        Assert.That(StoredHashes(dir), Has.Count.EqualTo(2), "a finished transaction stays whole until the next one begins");

        store.Begin(Tx("tx-3", v3));

        Assert.That(StoredHashes(dir), Is.EquivalentTo(new[] { ManifestCodec.Hash(v1), ManifestCodec.Hash(v3) }));
        Assert.That(store.Installed()!.Manifest, Is.EqualTo(v1));
    }

    [Test]
    public void Begin_ManifestOfAFinishedTransactionAgain_KeptAndReadBack()
    {
        using var dir = TempDir.ForCurrentTest();
        var v2 = ManifestBytes("2.0.0", "1.0.0");
        using var store = Open(dir);
        store.Begin(Tx("tx-1", v2));
        store.SetState("tx-1", TxState.RolledBack);

        store.Begin(Tx("tx-2", v2));

        Assert.That(store.Pending()!.Manifest, Is.EqualTo(v2));
        Assert.That(StoredHashes(dir), Is.EqualTo(new[] { ManifestCodec.Hash(v2) }));
    }

    [Test]
    public void Pending_ManifestRowMissing_ThrowsJournalCorrupt()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);
        store.Begin(Tx("tx-1", ManifestBytes("2.0.0", "1.0.0")));
        using (var db = Raw(dir))
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = "DELETE FROM manifests";
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<PatcherException>(() => store.Pending());

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.JournalCorrupt));
    }

    [Test]
    public void Open_SchemaOneJournal_RefusedWithJournalCorruptAndLeftUnchanged()
    {
        using var dir = TempDir.ForCurrentTest();
        using (var db = Raw(dir))
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE tx(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, manifest_hash TEXT NOT NULL, manifest BLOB NOT NULL);
                INSERT INTO meta(key, value) VALUES('schema', '1');
                """;
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<PatcherException>(() => Open(dir).Dispose());

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.JournalCorrupt));
        Assert.That(ex.Message, Does.Contain("schema 1 is not supported"));
        using var check = Raw(dir);
        Assert.That(Long(check, "SELECT count(*) FROM sqlite_schema WHERE name = 'manifests'"), Is.EqualTo(0));
    }

    [Test]
    public void Open_TablesWithoutSchemaRow_Refused()
    {
        using var dir = TempDir.ForCurrentTest();
        using (var db = Raw(dir))
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = "CREATE TABLE tx(id TEXT PRIMARY KEY)";
            cmd.ExecuteNonQuery();
        }

        var ex = Assert.Throws<PatcherException>(() => Open(dir).Dispose());

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.JournalCorrupt));
    }

    [Test]
    public void After_WithInstalledVersion_ProductAndVersionAsTheCodecReadsThem()
    {
        var bytes = ManifestBytes("2.0.0", "1.0.0");
        var json = Encoding.UTF8.GetString(bytes);
        // An escaped value: read as the codec reads it. (A repeated name is refused by the codec, and so here: see below.)
        json = json.Replace("\"version\": \"2.0.0\"", "\"version\": \"2\\u002E0.0\"", StringComparison.Ordinal);
        var tricky = Encoding.UTF8.GetBytes(json);
        var parsed = ManifestCodec.Deserialize(tricky);
        var before = new InstalledRecord("demo-game", "1.0.0", "h1", ManifestBytes("1.0.0"), null, null);

        var after = InstalledRecord.After(tricky, ManifestCodec.Hash(tricky), before, keepsPreviousTree: false);

        Assert.That((after.Product, after.Version), Is.EqualTo((parsed.Product, parsed.Version)));
        Assert.That(after.Version, Is.EqualTo("2.0.0"));
        Assert.That((after.PreviousVersion, after.PreviousManifestHash), Is.EqualTo(("1.0.0", "h1")));
        Assert.That(after.PreviousManifest, Is.SameAs(before.Manifest));
    }

    [Test]
    public void After_WithInstalledVersionAndANameRepeated_FailsAsTheCodecDoes()
    {
        var before = new InstalledRecord("demo-game", "1.0.0", "h1", ManifestBytes("1.0.0"), null, null);
        var json = Encoding.UTF8.GetString(ManifestBytes("2.0.0", "1.0.0"))
            .Replace("\"product\": \"demo-game\"", "\"product\": \"x\", \"product\": \"demo-game\"", StringComparison.Ordinal);

        var ex = Assert.Throws<PatcherException>(() => InstalledRecord.After(Encoding.UTF8.GetBytes(json), "h2", before, keepsPreviousTree: false));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("names product twice"));
    }

    [Test]
    public void After_WithInstalledVersionAndBytesNotJson_FailsAsTheCodecDoes()
    {
        var before = new InstalledRecord("demo-game", "1.0.0", "h1", ManifestBytes("1.0.0"), null, null);
        var garbage = Encoding.UTF8.GetBytes("{\"format\": 1, \"product\": \"demo-game\", \"version\": \"2.0.0\"} trailing");

        var ex = Assert.Throws<PatcherException>(() => InstalledRecord.After(garbage, "h2", before, keepsPreviousTree: false));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }
}
