using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>What macOS does beyond any Unix: a durable fsync (F_FULLFSYNC) and an atomic exchange (renamex_np).</summary>
[SupportedOSPlatform("macos")]
internal sealed class MacFileOps : UnixFileOps
{
    /// <summary>fsync on macOS does not flush the drive's cache; F_FULLFSYNC does. Where it is refused (some file systems), fsync.</summary>
    private protected override void SyncData(SafeFileHandle file, string path)
    {
        if (Libc.fcntl(file, Libc.F_FULLFSYNC_MACOS, 0) == 0) return;
        base.SyncData(file, path);
    }

    /// <summary>RENAME_SWAP exchanges two paths atomically on APFS; false where the volume cannot.</summary>
    public override bool TryExchange(string a, string b)
    {
        if (Libc.renamex_np(a, b, Libc.RENAME_SWAP_MACOS) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (NativeErrors.ExchangeUnsupported(errno)) return false;
        throw NativeErrors.FromErrno(errno, $"exchange with '{b}'", a);
    }
}
