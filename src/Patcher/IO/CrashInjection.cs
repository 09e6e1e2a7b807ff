using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Patching.IO;

/// <summary>
/// Test hook for the out-of-process crash harness. When the environment variable
/// <c>PATCHER_TEST_CRASH_AT=N</c> is set, the N-th crash point (every mutating file operation and every
/// journal transition) kills the process with SIGKILL, the way a power cut or a task manager would,
/// with no finally blocks or flushes. <c>PATCHER_TEST_CRASH_LOG=path</c> appends one line per point
/// so the harness learns how many points an apply has. Without the variables this costs one branch.
/// </summary>
internal static class CrashInjection
{
    /// <summary>
    /// The hook is armed only in a process that opted in with this AppContext switch (the crash-test host sets it
    /// in code), so the environment variables alone cannot kill a game or make it write a log somewhere.
    /// </summary>
    public const string OptInSwitch = "Patching.Testing.AllowCrashInjection";

    private static readonly bool OptedIn = AppContext.TryGetSwitch(OptInSwitch, out var on) && on;
    private static readonly long CrashAt = OptedIn && long.TryParse(Environment.GetEnvironmentVariable("PATCHER_TEST_CRASH_AT"), out var n) ? n : 0;
    private static readonly string? LogPath = OptedIn ? Environment.GetEnvironmentVariable("PATCHER_TEST_CRASH_LOG") : null;
    private static long _count;

    public static bool Enabled => CrashAt > 0 || LogPath is not null;

    public static void Point(string label)
    {
        if (!Enabled) return;
        var i = Interlocked.Increment(ref _count);
        if (LogPath is not null)
        {
            lock (LogPath) File.AppendAllText(LogPath, $"{i} {label}\n");
        }

        if (i == CrashAt)
        {
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}

/// <summary>Decorates a file-operations seam with a crash point before every mutating call.</summary>
internal sealed class CrashingFileOps(IFileOps inner) : FileOpsDecorator(inner)
{
    public override Stream Create(string path)
    {
        CrashInjection.Point("create " + path);
        return Inner.Create(path);
    }

    public override Stream OpenToContinue(string path, long length)
    {
        CrashInjection.Point("continue " + path);
        return Inner.OpenToContinue(path, length);
    }

    public override void Sync(Stream stream)
    {
        CrashInjection.Point("fsync");
        Inner.Sync(stream);
    }

    public override void SyncDirectory(string path)
    {
        CrashInjection.Point("fsync-dir " + path);
        Inner.SyncDirectory(path);
    }

    public override void CreateDirectory(string path)
    {
        CrashInjection.Point("mkdir " + path);
        Inner.CreateDirectory(path);
    }

    public override void Rename(string from, string to)
    {
        CrashInjection.Point($"rename {from} -> {to}");
        Inner.Rename(from, to);
    }

    public override bool TryExchange(string a, string b)
    {
        CrashInjection.Point($"exchange {a} <-> {b}");
        return Inner.TryExchange(a, b);
    }

    public override bool TryHardLink(string existing, string newPath)
    {
        CrashInjection.Point("link " + newPath);
        return Inner.TryHardLink(existing, newPath);
    }

    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath)
    {
        CrashInjection.Point("link " + newPath);
        return Inner.TryLinkWalkedFile(tree, relative, walked, newPath);
    }

    public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable)
    {
        CrashInjection.Point("link-open " + newPath);
        return Inner.TryLinkOpenFile(file, path, newPath, executable);
    }

    public override void DeleteFile(string path)
    {
        CrashInjection.Point("unlink " + path);
        Inner.DeleteFile(path);
    }

    public override void DeleteDirectory(string path)
    {
        CrashInjection.Point("rmdir " + path);
        Inner.DeleteDirectory(path);
    }

    public override void SetExecutable(string path, bool executable)
    {
        CrashInjection.Point("chmod " + path);
        Inner.SetExecutable(path, executable);
    }

    public override void CopySymlink(string from, string to)
    {
        CrashInjection.Point("symlink " + to);
        Inner.CopySymlink(from, to);
    }

    public override void CopyMode(string from, string to)
    {
        CrashInjection.Point("chmod " + to);
        Inner.CopyMode(from, to);
    }
}
