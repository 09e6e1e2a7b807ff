using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Patching.WineScenarios;

/// <summary>ntdll's wine_get_version, present only under Wine: tells the report which Wine ran the scenarios.</summary>
[SupportedOSPlatform("windows")]
internal static partial class WineNative
{
    [LibraryImport("ntdll.dll", EntryPoint = "wine_get_version")]
    private static partial IntPtr WineGetVersion();

    public static string? Version() => Marshal.PtrToStringAnsi(WineGetVersion());
}
