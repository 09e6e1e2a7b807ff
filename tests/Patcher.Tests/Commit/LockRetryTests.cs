using Patching.Commit;
using Patching.IO;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Commit;

public sealed class LockRetryTests
{
    private static PatcherException Sharing() => NativeErrors.FromWin32(32, "rename", "x");

    [TestCase("30s", 30_000)]
    [TestCase("500ms", 500)]
    [TestCase("1.5s", 1_500)]
    [TestCase("2m", 120_000)]
    [TestCase("10", 10_000)]
    [TestCase(" 250MS ", 250)]
    [TestCase("00:00:05", 5_000)]
    public void TryParseDuration_ValidText_Parsed(string text, int expectedMs)
    {
        Assert.That(LockRetry.TryParseDuration(text, out var value), Is.True);
        Assert.That(value, Is.EqualTo(TimeSpan.FromMilliseconds(expectedMs)));
    }

    [TestCase("")]
    [TestCase("abc")]
    [TestCase("-1s")]
    [TestCase("5 parsecs")]
    public void TryParseDuration_InvalidText_Rejected(string text) =>
        Assert.That(LockRetry.TryParseDuration(text, out _), Is.False);

    [Test]
    public void ResolveBudget_OptionUnset_UsesEnvironmentVariableElseDefault()
    {
        var saved = Environment.GetEnvironmentVariable(LockRetry.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(LockRetry.EnvironmentVariable, "750ms");
            Assert.That(LockRetry.ResolveBudget(new PatcherOptions(), new ListLogger()), Is.EqualTo(TimeSpan.FromMilliseconds(750)));
            Assert.That(LockRetry.ResolveBudget(new PatcherOptions { FileLockTimeout = TimeSpan.FromSeconds(3) }, new ListLogger()),
                Is.EqualTo(TimeSpan.FromSeconds(3)), "the option wins over the variable");
            var log = new ListLogger();
            Environment.SetEnvironmentVariable(LockRetry.EnvironmentVariable, "soon");
            Assert.That(LockRetry.ResolveBudget(new PatcherOptions(), log), Is.EqualTo(LockRetry.DefaultBudget));
            Assert.That(log.Lines, Has.Some.Contains("soon"));
            Environment.SetEnvironmentVariable(LockRetry.EnvironmentVariable, null);
            Assert.That(LockRetry.ResolveBudget(new PatcherOptions(), log), Is.EqualTo(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Environment.SetEnvironmentVariable(LockRetry.EnvironmentVariable, saved);
        }
    }

    [Test]
    public void Run_LockReleasedDuringLayer2_ReportsLayer2AfterGcPass()
    {
        var time = new FakeTimeProvider();
        var retry = new LockRetry(TimeSpan.FromSeconds(10), time, new ListLogger(), accessDeniedMayBeLock: true);
        var calls = 0;

        var layer = retry.Run("f", "replace", null, () =>
        {
            calls++;
            if (time.Elapsed < TimeSpan.FromSeconds(2)) throw Sharing();
        }, null);

        Assert.That(layer, Is.EqualTo(ReplaceLayer.AfterGc));
        Assert.That(time.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(2)).And.LessThan(TimeSpan.FromSeconds(4)));
        Assert.That(calls, Is.GreaterThan(3));
    }

    [Test]
    public void Run_PermanentLockWithLayer3_TriesEveryLayerThenThrowsFileLockedAfterBudget()
    {
        var time = new FakeTimeProvider();
        var retry = new LockRetry(TimeSpan.FromSeconds(8), time, new ListLogger(), accessDeniedMayBeLock: true);
        var posix = 0;
        var aside = 0;

        var ex = Assert.Throws<PatcherException>(() => retry.Run("data/x.pak", "replace",
            () => { posix++; throw Sharing(); },
            () => throw Sharing(),
            () => { aside++; throw Sharing(); }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.FileLocked));
        Assert.That(ex.Path, Is.EqualTo("data/x.pak"));
        Assert.That(ex.NativeError, Is.EqualTo(32));
        Assert.That(posix, Is.EqualTo(1));
        Assert.That(aside, Is.GreaterThan(1));
        Assert.That(time.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(8)).And.LessThan(TimeSpan.FromSeconds(8.1)), "bounded by the budget");
    }

    [Test]
    public void Run_Layer0Available_UsedFirstAndNothingElse()
    {
        var log = new ListLogger();
        var retry = new LockRetry(TimeSpan.FromSeconds(1), new FakeTimeProvider(), log, accessDeniedMayBeLock: true);
        var layer = retry.Run("f", "replace", () => true, () => Assert.Fail("layer 1 must not run"), null);
        Assert.That(layer, Is.EqualTo(ReplaceLayer.PosixRename));
        Assert.That(log.Lines, Has.Some.Contains("after 1 attempt(s)"));
    }

    [Test]
    public void Run_Layer0NotAvailable_NotCountedAsAnAttempt()
    {
        // Linux, or a Windows volume without POSIX renames: layer 0 returns false without trying. Every replace used to
        // log "after 2 attempt(s)" there, as if its first try had failed.
        var log = new ListLogger();
        var retry = new LockRetry(TimeSpan.FromSeconds(1), new FakeTimeProvider(), log, accessDeniedMayBeLock: true);
        var layer = retry.Run("f", "replace", () => false, () => { }, null);
        Assert.That(layer, Is.EqualTo(ReplaceLayer.MoveFileEx));
        Assert.That(log.Lines, Has.Some.Contains("after 1 attempt(s)"));
        Assert.That(log.Lines, Has.None.Contains("after 2 attempt(s)"));
    }

    [Test]
    public void Run_FirstTrySucceeds_LoggedAtDebugWhileRetriesAreLoggedAtInformation()
    {
        // An ordinary update replaces every file on its first try: one Information line per file would bury the few
        // that met a lock.
        var log = new ListLogger();
        var retry = new LockRetry(TimeSpan.FromSeconds(10), new FakeTimeProvider(), log, accessDeniedMayBeLock: true);
        retry.Run("plain", "replace", null, () => { }, null);
        var calls = 0;
        retry.Run("held", "replace", null, () =>
        {
            if (++calls < 3) throw Sharing();
        }, null);

        Assert.That(log.Lines, Has.Some.StartsWith("Debug: replace 'plain': layer 1"));
        Assert.That(log.Lines, Has.Some.StartsWith("Information: replace 'held': layer 1").And.Contains("after 3 attempt(s)"));
    }

    [Test]
    public void Run_NotALock_PropagatesAtOnce()
    {
        var time = new FakeTimeProvider();
        var retry = new LockRetry(TimeSpan.FromSeconds(10), time, new ListLogger(), accessDeniedMayBeLock: true);
        var calls = 0;

        var ex = Assert.Throws<PatcherException>(() => retry.Run("f", "replace", null, () =>
        {
            calls++;
            throw NativeErrors.FromWin32(112, "rename", "f"); // ERROR_DISK_FULL
        }, null));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.DiskFull));
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(time.Elapsed, Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void Run_AccessDeniedOnUnixSemantics_NotRetried()
    {
        var retry = new LockRetry(TimeSpan.FromSeconds(10), new FakeTimeProvider(), new ListLogger(), accessDeniedMayBeLock: false);
        var calls = 0;

        var ex = Assert.Throws<PatcherException>(() => retry.Run("f", "replace", null, () =>
        {
            calls++;
            throw NativeErrors.FromWin32(5, "rename", "f");
        }, null));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.AccessDenied), "permission denied is not a lock off Windows");
        Assert.That(calls, Is.EqualTo(1));
    }
}
