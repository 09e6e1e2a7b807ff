using System.Text;
using Patching.IO;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.PowerLoss;

/// <summary>
/// The power-loss model itself: what survives a cut and what may not. If these drift, the power-loss suite
/// proves less than docs/recovery.md claims, so each rule of the model has a test here.
/// </summary>
[Category("PowerLoss")]
public sealed class SimulatedFileSystemTests
{
    private const int Seeds = 64;

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string? Text(SimulatedFileSystem fs, string path) => fs.ReadAllBytes(path) is { } b ? Encoding.UTF8.GetString(b) : null;

    /// <summary>Every distinct result of <paramref name="observe"/> over many reboots of one crashed state.</summary>
    private static HashSet<string> Outcomes(SimulatedFileSystem crashed, Func<SimulatedFileSystem, string> observe) =>
        Enumerable.Range(0, Seeds).Select(seed => observe(crashed.AfterPowerLoss(new Random(seed)))).ToHashSet();

    private static void Write(SimulatedFileSystem fs, string path, string text, bool sync)
    {
        using var s = fs.Create(path);
        s.Write(B(text));
        if (sync) fs.Sync(s);
    }

    [Test]
    public void AfterPowerLoss_FileDataAndEntrySynced_AlwaysSurvives()
    {
        var fs = new SimulatedFileSystem();
        fs.CreateDirectory("/d");
        fs.SyncDirectory("/");
        Write(fs, "/d/f", "hello", sync: true);
        fs.SyncDirectory("/d");

        Assert.That(Outcomes(fs, r => Text(r, "/d/f") ?? "<missing>"), Is.EquivalentTo(new[] { "hello" }));
    }

    [Test]
    public void AfterPowerLoss_NothingSynced_FileMayBeMissingEmptyGarbledOrWhole()
    {
        var fs = new SimulatedFileSystem();
        fs.CreateDirectory("/d");
        fs.SyncDirectory("/");
        Write(fs, "/d/f", new string('x', 2000), sync: false);

        var seen = Outcomes(fs, r => Text(r, "/d/f") switch
        {
            null => "missing",
            "" => "empty",
            var t when t == new string('x', 2000) => "whole",
            _ => "garbled",
        });

        Assert.That(seen, Is.EquivalentTo(new[] { "missing", "empty", "whole", "garbled" }));
    }

    [Test]
    public void AfterPowerLoss_DataSyncedButEntryNot_FileMayVanish()
    {
        var fs = new SimulatedFileSystem();
        fs.CreateDirectory("/d");
        fs.SyncDirectory("/");
        Write(fs, "/d/f", "durable bytes", sync: true);

        Assert.That(Outcomes(fs, r => Text(r, "/d/f") ?? "<missing>"), Is.EquivalentTo(new[] { "durable bytes", "<missing>" }));
    }

    [Test]
    public void AfterPowerLoss_TruncatedAndRewrittenWithoutFsync_OldContentMayReturn()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/f", B("old"));
        Write(fs, "/f", "new", sync: false);

        Assert.That(Outcomes(fs, r => Text(r, "/f")!), Is.SupersetOf(new[] { "old", "new" }));
    }

    [Test]
    public void AfterPowerLoss_ChmodWithoutLaterFsync_ModeMayBeLost()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/f", B("x"));
        fs.SetExecutable("/f", true);

        Assert.That(Outcomes(fs, r => r.Stat("/f").Executable.ToString()), Is.EquivalentTo(new[] { "True", "False" }));
    }

    [Test]
    public void AfterPowerLoss_UnsyncedFileRenameAcrossDirectories_NeverLosesTheFile()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/a/f", B("content"));
        fs.WriteDurably("/b/keep", B("k"));
        fs.Rename("/a/f", "/b/f");

        var seen = Outcomes(fs, r => $"a={Text(r, "/a/f") != null} b={Text(r, "/b/f") != null}");

        // Old name, new name, or (harsh but possible) both: never neither.
        Assert.That(seen, Is.EquivalentTo(new[] { "a=True b=False", "a=False b=True", "a=True b=True" }));
    }

    [Test]
    public void AfterPowerLoss_RenameWithDestinationSynced_NewNameAlwaysThere()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/a/f", B("content"));
        fs.WriteDurably("/b/keep", B("k"));
        fs.Rename("/a/f", "/b/f");
        fs.SyncDirectory("/b");

        Assert.That(Outcomes(fs, r => $"a={Text(r, "/a/f") != null} b={Text(r, "/b/f")}"), Is.EquivalentTo(new[] { "a=True b=content", "a=False b=content" }));
    }

    [Test]
    public void AfterPowerLoss_DirectoryExchangeNotSynced_EitherBothSwappedOrNeither()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/p/game/v", B("1"));
        fs.WriteDurably("/s/staging/v", B("2"));
        Assert.That(fs.TryExchange("/s/staging", "/p/game"), Is.True);

        var seen = Outcomes(fs, r => $"{Text(r, "/p/game/v")}{Text(r, "/s/staging/v")}");

        Assert.That(seen, Is.EquivalentTo(new[] { "12", "21" }));
    }

    [Test]
    public void AfterPowerLoss_ExchangeWithOneParentSynced_IsDurable()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/p/game/v", B("1"));
        fs.WriteDurably("/s/staging/v", B("2"));
        fs.TryExchange("/s/staging", "/p/game");
        fs.SyncDirectory("/p");

        Assert.That(Outcomes(fs, r => Text(r, "/p/game/v")!), Is.EquivalentTo(new[] { "2" }));
    }

    [Test]
    public void AfterPowerLoss_DirectoryRenameNotSynced_NeverTwoNames()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/p/game/v", B("1"));
        fs.WriteDurably("/s/x", B("x"));
        fs.Rename("/p/game", "/s/old");

        Assert.That(Outcomes(fs, r => $"{r.Exists("/p/game")} {r.Exists("/s/old")}"), Is.EquivalentTo(new[] { "True False", "False True" }));
    }

    [Test]
    public void AfterPowerLoss_KeepsInodeNumbers()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/p/game/v", B("1"));
        var before = fs.Stat("/p/game").Inode;

        Assert.That(fs.AfterPowerLoss(new Random(1)).Stat("/p/game").Inode, Is.EqualTo(before), "the journal records directory identities");
    }

    [Test]
    public void CrashAt_Before_CallDoesNotHappenAndEveryLaterCallThrows()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/a", B("1"));
        fs.CrashAt(2, CrashMoment.Before);
        fs.CreateDirectory("/d");

        Assert.Throws<SimulatedCrashException>(() => fs.DeleteFile("/a"));
        Assert.Throws<SimulatedCrashException>(() => fs.Stat("/a"));
        Assert.That(fs.Crashed, Is.True);
        Assert.That(fs.AfterPowerLoss(new Random(0)).Exists("/a"), Is.True, "the unlink never happened");
    }

    [Test]
    public void CrashAt_After_CallHappensThenThrows()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/d/a", B("1"));
        fs.CrashAt(1, CrashMoment.After);

        Assert.Throws<SimulatedCrashException>(() => fs.DeleteFile("/d/a"), "the call takes effect, then the power goes");
        Assert.Throws<SimulatedCrashException>(() => fs.SyncDirectory("/d"));
        Assert.That(Outcomes(fs, r => r.Exists("/d/a").ToString()), Is.EquivalentTo(new[] { "True", "False" }), "the unlink happened but is not durable");
    }

    [Test]
    public void Errors_MatchTheRealSeam()
    {
        var fs = new SimulatedFileSystem();
        fs.WriteDurably("/d/a", B("1"));
        fs.CreateDirectory("/e");

        Assert.That(Assert.Throws<PatcherException>(() => fs.Rename("/missing", "/x"))!.NativeError, Is.EqualTo(2));
        Assert.That(Assert.Throws<PatcherException>(() => fs.DeleteDirectory("/d"))!.NativeError, Is.EqualTo(39));
        Assert.That(Assert.Throws<PatcherException>(() => fs.Create("/nodir/f"))!.NativeError, Is.EqualTo(2));
        Assert.That(Assert.Throws<PatcherException>(() => fs.TryHardLink("/d/a", "/d/a"))!.NativeError, Is.EqualTo(17));
        Assert.DoesNotThrow(() => fs.DeleteFile("/d/missing"), "File.Delete ignores a missing file");
        Assert.DoesNotThrow(() => fs.DeleteDirectory("/nothere"), "FileOps.DeleteDirectory ignores a missing directory");
        Assert.That(fs.Stat("/d/a"), Is.EqualTo(new EntryInfo(EntryKind.File, 1, false, SimulatedFileSystem.Device, fs.Stat("/d/a").Inode)));
    }
}
