using Microsoft.Extensions.Logging.Abstractions;
using Patching.Journal;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Journal;

/// <summary>The journal's times come from <see cref="PatcherOptions.TimeProvider"/>, not the machine's clock.</summary>
public sealed class JournalClockTests
{
    private static TxRecord Tx(string id) => new()
    {
        Id = id, Kind = TxKind.Apply, Product = "demo-game", ToVersion = "2.0.0", ManifestHash = Patching.Manifests.ManifestCodec.Hash(RawJournal.Manifest),
        Manifest = RawJournal.Manifest, Strategy = "swap", State = TxState.Started,
    };

    [Test]
    public void BeginAndSetState_FakeClock_RowsRecordItsTimes()
    {
        using var dir = TempDir.ForCurrentTest();
        var clock = new FakeTimeProvider(new DateTimeOffset(2031, 5, 6, 7, 8, 9, TimeSpan.Zero));
        using (var store = JournalStore.Open(dir["journal.db"], dir["game"], transactionPending: false, NullLogger.Instance, clock))
        {
            store.Begin(Tx("tx-1"));
            clock.Advance(TimeSpan.FromMinutes(5));
            store.SetState("tx-1", TxState.RolledBack);
        }

        Assert.That(RawJournal.Column(dir["journal.db"], "SELECT created || ' ' || updated FROM tx"),
            Is.EqualTo(new[] { "2031-05-06T07:08:09.0000000+00:00 2031-05-06T07:13:09.0000000+00:00" }));
    }

    [Test]
    public void Apply_OptionsTimeProvider_JournalRowsCarryItsTime()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var options = s.Options with { TimeProvider = new FixedTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero)) };

        Patcher.Apply(s.InstallDir, s.PatchDir, options);

        Assert.That(RawJournal.Column(Path.Join(s.ParentDir, ".game.patcher", "journal.db"), "SELECT state || ' ' || created || ' ' || updated FROM tx"),
            Is.EqualTo(new[] { "done 2030-01-02T03:04:05.0000000+00:00 2030-01-02T03:04:05.0000000+00:00" }));
    }

    [Test]
    public void Open_CorruptJournalNothingPending_MovedAsideUnderTheClocksTime()
    {
        using var dir = TempDir.ForCurrentTest();
        File.WriteAllText(dir["journal.db"], "this is not an SQLite database, and it is long enough to be read as one");

        using (JournalStore.Open(dir["journal.db"], dir["game"], transactionPending: false, NullLogger.Instance,
                   new FixedTimeProvider(new DateTimeOffset(2029, 8, 7, 6, 5, 4, TimeSpan.Zero))))
        {
        }

        Assert.That(File.Exists(dir["journal.db.corrupt-20290807060504"]), Is.True);
    }
}
