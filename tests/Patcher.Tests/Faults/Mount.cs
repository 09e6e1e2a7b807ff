using System.Diagnostics;

namespace Patching.Tests.Faults;

/// <summary>
/// A tmpfs or a read-only bind mount made by a test and removed on dispose. Mounting needs root; without it, or
/// when the kernel refuses (a container without CAP_SYS_ADMIN), the test is skipped with the reason.
/// </summary>
internal sealed class Mount : IDisposable
{
    private readonly string _dir;
    private bool _mounted = true;

    private Mount(string dir) => _dir = dir;

    public static bool IsRoot => Environment.IsPrivilegedProcess;

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (e.g. "2m") at <paramref name="dir"/>, or skips the test.</summary>
    public static Mount TmpfsOrIgnore(string dir, string size)
    {
        RequireRootOnLinux("mounting a tmpfs");
        Directory.CreateDirectory(dir);
        var (ok, error) = Run("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir);
        if (!ok) Assert.Ignore($"cannot mount a tmpfs here ({error.Trim()})");
        return new Mount(dir);
    }

    /// <summary>Bind-mounts <paramref name="dir"/> onto itself (a mount point with its parent's device id), or skips the test.</summary>
    public static Mount BindOrIgnore(string dir)
    {
        RequireRootOnLinux("a bind mount");
        var (ok, error) = Run("mount", "--bind", dir, dir);
        if (!ok) Assert.Ignore($"cannot bind-mount here ({error.Trim()})");
        return new Mount(dir);
    }

    /// <summary>Bind-mounts <paramref name="dir"/> onto itself read-only (root ignores permission bits, not this), or skips the test.</summary>
    public static Mount ReadOnlyBindOrIgnore(string dir)
    {
        var mount = BindOrIgnore(dir);
        var (ok, error) = Run("mount", "-o", "remount,bind,ro", dir);
        if (!ok)
        {
            mount.Dispose();
            Assert.Ignore($"cannot remount read-only here ({error.Trim()})");
        }

        return mount;
    }

    public void RemountReadOnly()
    {
        var (ok, error) = Run("mount", "-o", "remount,ro", _dir);
        if (!ok) Assert.Ignore($"cannot remount read-only here ({error.Trim()})");
    }

    public void RemountReadWrite()
    {
        var (ok, error) = Run("mount", "-o", "remount,rw", _dir);
        Assert.That(ok, Is.True, error);
    }

    public void Dispose()
    {
        if (!_mounted) return;
        _mounted = false;
        // A lazy unmount if something (a leaked handle) still holds it, so teardown never leaves a mount behind.
        if (!Run("umount", _dir).Ok) Run("umount", "-l", _dir);
    }

    private static void RequireRootOnLinux(string what)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore($"{what} is Linux-only here");
        if (!IsRoot) Assert.Ignore($"{what} needs root; this test runs as a normal user");
    }

    private static (bool Ok, string Error) Run(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode == 0, err);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (false, ex.Message);
        }
    }
}
