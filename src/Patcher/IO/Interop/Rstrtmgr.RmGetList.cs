using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Rstrtmgr
{
    /// <summary>RmGetList: the processes holding the registered files. Returns ERROR_MORE_DATA when the array is too small.</summary>
    [LibraryImport(Name)]
    [SupportedOSPlatform("windows")]
    internal static unsafe partial int RmGetList(uint sessionHandle, out uint procInfoNeeded, ref uint procInfo,
        RM_PROCESS_INFO* affectedApps, out uint rebootReasons);
}
