using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

/// <summary>
/// The Restart Manager (rstrtmgr.dll): asks Windows which processes hold a file, so a lock that outlasts the
/// retry budget can be reported with the names of the programs to close. One API per file.
/// </summary>
[SupportedOSPlatform("windows")]
internal static partial class Rstrtmgr
{
    internal const string Name = "rstrtmgr.dll";
    internal const int CCH_RM_SESSION_KEY = 32;
    internal const int CCH_RM_MAX_APP_NAME = 255;
    internal const int CCH_RM_MAX_SVC_NAME = 63;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RM_UNIQUE_PROCESS
    {
        public int dwProcessId;
        public System.Runtime.InteropServices.ComTypes.FILETIME ProcessStartTime;
    }

    /// <summary>RM_PROCESS_INFO, blittable: the two names are fixed UTF-16 arrays.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct RM_PROCESS_INFO
    {
        public RM_UNIQUE_PROCESS Process;
        public fixed char strAppName[CCH_RM_MAX_APP_NAME + 1];
        public fixed char strServiceShortName[CCH_RM_MAX_SVC_NAME + 1];
        public int ApplicationType;
        public uint AppStatus;
        public uint TSSessionId;
        public int bRestartable;
    }
}
