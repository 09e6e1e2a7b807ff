using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>Asks Windows' Restart Manager which processes hold a file, for the message of a lock that outlasted its budget.</summary>
[SupportedOSPlatform("windows")]
internal static class RestartManager
{
    /// <summary>
    /// The processes holding <paramref name="path"/>, as "name (pid N)", from the Restart Manager. Empty where
    /// Windows cannot tell (or off Windows); never throws, because it only decorates an error message.
    /// </summary>
    public static IReadOnlyList<string> LockHolders(string path)
    {
        try
        {
            return LockHoldersWindows(path);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or ExternalException)
        {
            return [];
        }
    }

    private static unsafe List<string> LockHoldersWindows(string path)
    {
        var key = stackalloc char[Rstrtmgr.CCH_RM_SESSION_KEY + 1];
        if (Rstrtmgr.RmStartSession(out var session, 0, key) != 0) return [];
        try
        {
            if (Rstrtmgr.RmRegisterResources(session, 1, [Path.GetFullPath(path)], 0, IntPtr.Zero, 0, IntPtr.Zero) != 0) return [];
            uint count = 0;
            var rc = Rstrtmgr.RmGetList(session, out var needed, ref count, null, out _);
            if (rc != 0 && rc != NativeErrors.ERROR_MORE_DATA) return [];
            if (needed == 0) return [];
            var infos = new Rstrtmgr.RM_PROCESS_INFO[needed];
            count = needed;
            fixed (Rstrtmgr.RM_PROCESS_INFO* p = infos)
            {
                if (Rstrtmgr.RmGetList(session, out _, ref count, p, out _) != 0) return [];
                var result = new List<string>((int)count);
                for (var i = 0; i < count; i++)
                {
                    var name = new string(p[i].strAppName);
                    result.Add($"{name} (pid {p[i].Process.dwProcessId})");
                }

                return result;
            }
        }
        finally
        {
            _ = Rstrtmgr.RmEndSession(session);
        }
    }
}
