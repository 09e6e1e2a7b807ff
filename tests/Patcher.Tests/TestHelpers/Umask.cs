using System.Runtime.InteropServices;

namespace Patching.Tests.TestHelpers;

/// <summary>The process's umask, for tests of what Patcher creates under a permissive one.</summary>
internal static class Umask
{
    /// <summary>Sets the umask; returns the previous one.</summary>
    public static int Set(int mask) => umask(mask);

#pragma warning disable SYSLIB1054 // a test helper: the source-generated form needs unsafe code in the test project
    [DllImport("libc")]
    private static extern int umask(int mask);
#pragma warning restore SYSLIB1054
}
