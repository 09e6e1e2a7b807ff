using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Journal;

/// <summary>
/// One transition table, in the code and in docs/recovery.md, and the journal refuses every advance it does not list.
/// </summary>
public sealed class TxStateMachineTests
{
    private static readonly byte[] Manifest = RawJournal.Manifest;

    private static TxRecord Tx(string id, TxState state = TxState.Started) => new()
    {
        Id = id, Kind = TxKind.Apply, Product = "demo-game", ToVersion = "2.0.0", ManifestHash = ManifestCodec.Hash(Manifest),
        Manifest = Manifest, Strategy = "swap", State = state,
    };

    private static JournalStore Open(TempDir dir) => JournalStore.Open(dir["journal.db"], dir["game"], transactionPending: false, NullLogger.Instance, TimeProvider.System);

    /// <summary>Runs <paramref name="sql"/> on the journal; its first column's first value, if it has one.</summary>
    private static string? Raw(TempDir dir, string sql) => RawJournal.Column(dir["journal.db"], sql).FirstOrDefault();

    /// <summary>The rows of the table under "| state | may advance to |" in docs/recovery.md.</summary>
    private static Dictionary<string, string[]> DocTable()
    {
        var lines = File.ReadAllLines(Path.Join(RepoPaths.Docs, "recovery.md"));
        var header = Array.IndexOf(lines, "| state | may advance to |");
        Assert.That(header, Is.GreaterThanOrEqualTo(0), "docs/recovery.md has the transitions table");
        var table = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(header + 2).TakeWhile(l => l.StartsWith('|')))
        {
            var cells = line.Trim('|').Split('|', StringSplitOptions.TrimEntries);
            table.Add(cells[0], cells[1] == "nothing (final)" ? [] : cells[1].Split(',', StringSplitOptions.TrimEntries));
        }

        return table;
    }

    [Test]
    public void Table_InRecoveryDoc_IsTheCodesTable()
    {
        var code = TxStateMachine.Table.ToDictionary(r => r.From.ToText(), r => r.To.Select(s => s.ToText()).ToArray());

        Assert.That(DocTable(), Is.EqualTo(code));
    }

    [Test]
    public void Table_EveryState_HasARow()
    {
        Assert.That(TxStateMachine.Table.Select(r => r.From), Is.EquivalentTo(Enum.GetValues<TxState>()));
        Assert.That(TxStateMachine.IsFinal(TxState.Done) && TxStateMachine.IsFinal(TxState.RolledBack), Is.True);
    }

    /// <summary>Every pair of states: the journal takes exactly the advances the table lists, and a refused one changes nothing.</summary>
    [Test]
    public void SetState_EveryPairOfStates_AllowedExactlyWhenTheTableListsIt()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);
        store.Begin(Tx("tx-1"));
        var refused = new List<string>();
        foreach (var from in Enum.GetValues<TxState>())
        {
            foreach (var to in Enum.GetValues<TxState>())
            {
                Raw(dir, $"UPDATE tx SET state = '{from.ToText()}', updated = 'before'");
                try
                {
                    store.SetState("tx-1", to);
                    Assert.That(Raw(dir, "SELECT state FROM tx"), Is.EqualTo(to.ToText()));
                }
                catch (JournalInvariantException ex)
                {
                    refused.Add($"{from.ToText()}>{to.ToText()}");
                    Assert.That(ex.JournalPath, Is.EqualTo(dir["journal.db"]));
                    Assert.That(ex.Message, Does.Contain($"from {from.ToText()} to {to.ToText()}"));
                    Assert.That(Raw(dir, "SELECT state || ' ' || updated FROM tx"), Is.EqualTo(from.ToText() + " before"), "a refused advance changes nothing");
                }
            }
        }

        var allowed = new[]
        {
            "started>backup-complete", "started>rolled-back", "backup-complete>patched", "backup-complete>rolling-back",
            "backup-complete>rolled-back", "rolling-back>rolling-back", "rolling-back>rolled-back", "patched>done",
        };
        var all = Enum.GetValues<TxState>().SelectMany(f => Enum.GetValues<TxState>().Select(t => $"{f.ToText()}>{t.ToText()}"));
        Assert.That(refused, Is.EquivalentTo(all.Except(allowed)));
    }

    [Test]
    public void MarkPatched_FromStarted_RefusedAndNoVersionRecorded()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);
        store.Begin(Tx("tx-1"));

        Assert.Throws<JournalInvariantException>(() =>
            store.MarkPatched("tx-1", InstalledRecord.After(Manifest, ManifestCodec.Hash(Manifest), null, false), installIdentity: null));

        Assert.That((Raw(dir, "SELECT state FROM tx"), store.Installed()), Is.EqualTo(("started", (InstalledRecord?)null)));
    }

    [Test]
    public void MarkBackupComplete_FromPatched_RefusedAndIdentityNotRecorded()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);
        store.Begin(Tx("tx-1"));
        Raw(dir, "UPDATE tx SET state = 'patched'");

        Assert.Throws<JournalInvariantException>(() => store.MarkBackupComplete("tx-1", 7, 8));

        Assert.That(Raw(dir, "SELECT state || ' ' || staging_dev || ' ' || staging_ino FROM tx"), Is.EqualTo("patched 0 0"));
    }

    [Test]
    public void MarkLayeredBackupComplete_FromDone_RefusedAndStepsStayPending()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);
        store.Begin(Tx("tx-1"));
        store.RecordOps("tx-1", [new OpRow(1, LayeredOpKind.Place, "a", "ab", true, false, OpState.Pending)]);
        Raw(dir, "UPDATE tx SET state = 'done'");

        Assert.Throws<JournalInvariantException>(() => store.MarkLayeredBackupComplete("tx-1"));

        Assert.That(store.Ops("tx-1").Single().State, Is.EqualTo(OpState.Pending));
    }

    [Test]
    public void Begin_RowNotStarted_RefusedAndNothingWritten()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);

        var ex = Assert.Throws<JournalInvariantException>(() => store.Begin(Tx("tx-1", TxState.Patched)));

        Assert.That(ex!.JournalPath, Is.EqualTo(dir["journal.db"]));
        Assert.That(store.HasHistory(), Is.False);
    }

    [Test]
    public void SetState_UnknownTransaction_Refused()
    {
        using var dir = TempDir.ForCurrentTest();
        using var store = Open(dir);

        var ex = Assert.Throws<JournalInvariantException>(() => store.SetState("tx-none", TxState.RolledBack));

        Assert.That(ex!.Message, Does.Contain("tx-none is not in the journal"));
    }
}
