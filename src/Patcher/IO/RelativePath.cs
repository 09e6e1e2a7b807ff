namespace Patching.IO;

/// <summary>
/// Relative paths as manifests and walks write them: '/'-separated, no leading or trailing separator, "" for the root.
/// </summary>
internal static class RelativePath
{
    /// <summary>The full path of <paramref name="relative"/> below <paramref name="root"/>, with this system's separator.</summary>
    public static string Join(string root, string relative) =>
        Path.Join(root, Path.DirectorySeparatorChar == '/' ? relative : relative.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>The parent of a relative path; "" for a top-level entry.</summary>
    public static string Parent(string relative)
    {
        var i = relative.LastIndexOf('/');
        return i < 0 ? "" : relative[..i];
    }
}
