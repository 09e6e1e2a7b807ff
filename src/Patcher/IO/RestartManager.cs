using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Patching.IO.Interop;

namespace Patching.IO;

/// <summary>
/// Asks Windows' Restart Manager which processes hold files: for the message of a lock that outlasted its budget, and
/// to find the programs running from an install (<see cref="RunningPrograms"/>).
/// </summary>
[SupportedOSPlatform("windows")]
internal static class RestartManager
{
    /// <summary>
    /// The processes holding <paramref name="path"/>, as "name (pid N)", from the Restart Manager. Empty where
    /// Windows cannot tell (or off Windows); never throws, because it only decorates an error message.
    /// </summary>
    public static IReadOnlyList<string> LockHolders(string path) =>
        Holders([Path.GetFullPath(path)]).Select(h => $"{h.Name} (pid {h.ProcessId})").ToList();

    /// <summary>
    /// The processes holding any of <paramref name="paths"/> (full paths) open or mapped, once each. Empty where Windows
    /// cannot tell; never throws: a session that fails only means that nothing was found.
    /// </summary>
    public static List<(int ProcessId, string Name)> Holders(string[] paths)
    {
        if (paths.Length == 0) return [];
        try
        {
            return HoldersWindows(paths);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or ExternalException)
        {
            return [];
        }
    }

    private static unsafe List<(int, string)> HoldersWindows(string[] paths)
    {
        var key = stackalloc char[Rstrtmgr.CCH_RM_SESSION_KEY + 1];
        if (Rstrtmgr.RmStartSession(out var session, 0, key) != 0) return [];
        try
        {
            if (Rstrtmgr.RmRegisterResources(session, (uint)paths.Length, paths, 0, IntPtr.Zero, 0, IntPtr.Zero) != 0) return [];
            uint count = 0;
            var rc = Rstrtmgr.RmGetList(session, out var needed, ref count, null, out _);
            if (rc != 0 && rc != NativeErrors.ERROR_MORE_DATA) return [];
            if (needed == 0) return [];
            var infos = new Rstrtmgr.RM_PROCESS_INFO[needed];
            count = needed;
            fixed (Rstrtmgr.RM_PROCESS_INFO* p = infos)
            {
                if (Rstrtmgr.RmGetList(session, out _, ref count, p, out _) != 0) return [];
                var result = new List<(int, string)>((int)count);
                for (var i = 0; i < count; i++) result.Add((p[i].Process.dwProcessId, new string(p[i].strAppName)));
                return result;
            }
        }
        finally
        {
            _ = Rstrtmgr.RmEndSession(session);
        }
    }
}
