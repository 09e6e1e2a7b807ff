using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.IO.Interop;

internal static partial class Rstrtmgr
{
    /// <summary>RmRegisterResources: the files whose holders we want to know (no applications or services).</summary>
    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf16)]
    [SupportedOSPlatform("windows")]
    internal static partial int RmRegisterResources(uint sessionHandle, uint nFiles, string[] fileNames,
        uint nApplications, IntPtr applications, uint nServices, IntPtr serviceNames);
}
