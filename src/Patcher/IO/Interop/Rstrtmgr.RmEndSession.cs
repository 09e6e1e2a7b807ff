using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Rstrtmgr
{
    /// <summary>RmEndSession: closes a session opened by <see cref="RmStartSession"/>.</summary>
    [LibraryImport(Name)]
    [SupportedOSPlatform("windows")]
    internal static partial int RmEndSession(uint sessionHandle);
}
