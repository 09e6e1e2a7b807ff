using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Journal;

/// <summary>
/// The journal's states, kinds and step values are enums in memory and fixed texts on disk. The texts below are
/// written out literally, as journals of earlier builds hold them: a journal written before the enums existed is
/// read, and recovered, unchanged.
/// </summary>
public sealed class JournalTextTests
{
    private static JournalStore Open(string db, string install) =>
        JournalStore.Open(db, install, transactionPending: false, NullLogger.Instance, TimeProvider.System);

    [TestCase("started", nameof(TxState.Started))]
    [TestCase("backup-complete", nameof(TxState.BackupComplete))]
    [TestCase("patched", nameof(TxState.Patched))]
    [TestCase("rolling-back", nameof(TxState.RollingBack))]
    public void Pending_StateWrittenByAnEarlierBuild_ReadAsItsEnum(string text, string expectedName)
    {
        var expected = Enum.Parse<TxState>(expectedName);
        using var dir = TempDir.ForCurrentTest();
        RawJournal.WriteTx(dir["journal.db"], dir["game"], "tx-1", "rollback", text);

        using var store = Open(dir["journal.db"], dir["game"]);

        Assert.That((store.Pending()!.State, store.Pending()!.Kind), Is.EqualTo((expected, TxKind.Rollback)));
    }

    [TestCase("done")]
    [TestCase("rolled-back")]
    public void Pending_FinalStateWrittenByAnEarlierBuild_NothingPending(string text)
    {
        using var dir = TempDir.ForCurrentTest();
        RawJournal.WriteTx(dir["journal.db"], dir["game"], "tx-1", "apply", text);

        using var store = Open(dir["journal.db"], dir["game"]);

        Assert.That(store.Pending(), Is.Null);
        Assert.That(store.HasHistory(), Is.True);
    }

    [Test]
    public void OpsAndFiles_RowsWrittenByAnEarlierBuild_ReadAsTheirEnums()
    {
        using var dir = TempDir.ForCurrentTest();
        var db = dir["journal.db"];
        RawJournal.WriteTx(db, dir["game"], "tx-1", "apply", "backup-complete");
        RawJournal.Exec(db, """
            INSERT INTO layered_ops(tx_id, seq, kind, path, expected_sha256, backup, user, state, layer) VALUES
              ('tx-1', 1, 'displace', 'a', NULL, 1, 0, 'backed-up', NULL),
              ('tx-1', 2, 'rmdir', 'd', NULL, 0, 0, 'replaced', NULL),
              ('tx-1', 3, 'mkdir', 'e', NULL, 0, 0, 'pending', NULL),
              ('tx-1', 4, 'place', 'e/f', 'ab', 0, 0, 'replaced', 'rename');
            INSERT INTO files(tx_id, path, expected_sha256, observed_sha256, state) VALUES ('tx-1', 'e/f', 'ab', 'ab', 'staged');
            """);

        using var store = Open(db, dir["game"]);

        Assert.That(store.Ops("tx-1").Select(o => (o.Kind, o.State)), Is.EqualTo(new[]
        {
            (LayeredOpKind.Displace, OpState.BackedUp), (LayeredOpKind.RemoveDir, OpState.Replaced),
            (LayeredOpKind.MakeDir, OpState.Pending), (LayeredOpKind.Place, OpState.Replaced),
        }));
        Assert.That(store.Files("tx-1")["e/f"].State, Is.EqualTo(FileState.Staged));
    }

    [Test]
    public void Store_EveryValueItWrites_IsTheTextEarlierBuildsWrote()
    {
        using var dir = TempDir.ForCurrentTest();
        var db = dir["journal.db"];
        using (var store = Open(db, dir["game"]))
        {
            store.Begin(new TxRecord
            {
                Id = "tx-1", Kind = TxKind.Rollback, Product = "demo-game", ToVersion = "2.0.0", ManifestHash = ManifestCodec.Hash(RawJournal.Manifest),
                Manifest = RawJournal.Manifest, Strategy = "layered", State = TxState.Started,
            });
            store.RecordFiles("tx-1", [new FileRow("f", "ab", "ab", FileState.Staged)]);
            store.RecordOps("tx-1", [new OpRow(1, LayeredOpKind.Displace, "a", null, true, false, OpState.Pending),
                new OpRow(2, LayeredOpKind.RemoveDir, "b", null, false, false, OpState.Pending),
                new OpRow(3, LayeredOpKind.MakeDir, "c", null, false, false, OpState.Pending),
                new OpRow(4, LayeredOpKind.Place, "c/d", "ab", false, false, OpState.Pending)]);
            Assert.That(RawJournal.Column(db, "SELECT kind || ' ' || state FROM tx"), Is.EqualTo(new[] { "rollback started" }));
            store.MarkLayeredBackupComplete("tx-1");
            Assert.That(RawJournal.Column(db, "SELECT state FROM tx"), Is.EqualTo(new[] { "backup-complete" }));
            Assert.That(RawJournal.Column(db, "SELECT kind || ' ' || state FROM layered_ops ORDER BY seq"),
                Is.EqualTo(new[] { "displace backed-up", "rmdir pending", "mkdir pending", "place pending" }));
            store.MarkOpsReplaced("tx-1", [(4, null)]);
            store.SetState("tx-1", TxState.RollingBack);
            Assert.That(RawJournal.Column(db, "SELECT state FROM tx"), Is.EqualTo(new[] { "rolling-back" }));
            store.SetState("tx-1", TxState.RolledBack);
        }

        Assert.That(RawJournal.Column(db, "SELECT state FROM tx"), Is.EqualTo(new[] { "rolled-back" }));
        Assert.That(RawJournal.Column(db, "SELECT state FROM layered_ops WHERE seq = 4"), Is.EqualTo(new[] { "replaced" }));
        Assert.That(RawJournal.Column(db, "SELECT state FROM files"), Is.EqualTo(new[] { "staged" }));
    }

    [TestCase("tx", "state", "half-done")]
    [TestCase("tx", "kind", "upgrade")]
    public void Pending_UnknownText_ThrowsJournalCorruptNamingTheJournal(string table, string column, string text)
    {
        using var dir = TempDir.ForCurrentTest();
        var db = dir["journal.db"];
        RawJournal.WriteTx(db, dir["game"], "tx-1", "apply", "started");
        RawJournal.Exec(db, $"UPDATE {table} SET {column} = '{text}'");

        using var store = Open(db, dir["game"]);
        var ex = Assert.Throws<PatcherException>(() => store.Pending());

        Assert.That((ex!.Code, ex.Path), Is.EqualTo((PatchErrorCode.JournalCorrupt, db)));
        Assert.That(ex.Message, Does.Contain($"'{text}'"));
    }

    [TestCase("kind")]
    [TestCase("state")]
    public void Ops_UnknownText_ThrowsJournalCorruptNamingTheJournal(string column)
    {
        using var dir = TempDir.ForCurrentTest();
        var db = dir["journal.db"];
        RawJournal.WriteTx(db, dir["game"], "tx-1", "apply", "backup-complete");
        RawJournal.Exec(db, "INSERT INTO layered_ops(tx_id, seq, kind, path, backup, user, state) VALUES ('tx-1', 1, 'place', 'a', 0, 0, 'pending')");
        RawJournal.Exec(db, $"UPDATE layered_ops SET {column} = 'sideways'");

        using var store = Open(db, dir["game"]);
        var ex = Assert.Throws<PatcherException>(() => store.Ops("tx-1"));

        Assert.That((ex!.Code, ex.Path), Is.EqualTo((PatchErrorCode.JournalCorrupt, db)));
    }

    [Test]
    public void Recover_StartedTransactionWrittenByAnEarlierBuild_RolledBackAndJournaledAsBefore()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        var before = PatchScenario.Listing(s.InstallDir);
        var stateDir = Directory.CreateDirectory(Path.Join(s.ParentDir, ".game.patcher")).FullName;
        var db = Path.Join(stateDir, "journal.db");
        RawJournal.WriteTx(db, s.InstallDir, "tx-old", "apply", "started");
        PatchScenario.Write(Path.Join(stateDir, "staging-tx-old"), "game.exe", "half staged");
        File.WriteAllText(Path.Join(stateDir, "pending"), "tx-old");

        var result = Patcher.Recover(s.InstallDir, s.Options);

        Assert.That((result.Outcome, result.TransactionId), Is.EqualTo((RecoveryOutcome.RolledBack, "tx-old")));
        Assert.That(RawJournal.Column(db, "SELECT state FROM tx"), Is.EqualTo(new[] { "rolled-back" }));
        Assert.That(Directory.Exists(Path.Join(stateDir, "staging-tx-old")), Is.False);
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(before));
    }
}
