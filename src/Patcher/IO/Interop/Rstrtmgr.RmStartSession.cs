using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Rstrtmgr
{
    /// <summary>RmStartSession: opens a Restart Manager session; <paramref name="sessionKey"/> receives CCH_RM_SESSION_KEY + 1 chars.</summary>
    [LibraryImport(Name)]
    [SupportedOSPlatform("windows")]
    internal static unsafe partial int RmStartSession(out uint sessionHandle, int sessionFlags, char* sessionKey);
}
