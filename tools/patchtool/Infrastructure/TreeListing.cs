using System.Globalization;
using Patching.IO;

namespace PatchTool.Infrastructure;

/// <summary>
/// A hash listing of a tree: relative '/' path to "size sha256" for files and "dir" for directories (key
/// ends with '/'). Two trees are the same, byte for byte, when their listings are equal.
/// </summary>
internal static class TreeListing
{
    public static SortedDictionary<string, string> Of(string root)
    {
        var listing = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Walk(root, "", listing);
        return listing;
    }

    private static void Walk(string dir, string prefix, SortedDictionary<string, string> listing)
    {
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
        {
            var rel = prefix + entry.Name;
            if (entry.LinkTarget is not null) listing[rel] = $"symlink -> {entry.LinkTarget}";
            else if (entry is DirectoryInfo)
            {
                listing[rel + "/"] = "dir";
                Walk(entry.FullName, rel + "/", listing);
            }
            else
            {
                var size = ((FileInfo)entry).Length.ToString(CultureInfo.InvariantCulture);
                listing[rel] = $"{size} {ContentHash.OfFile(entry.FullName)}";
            }
        }
    }

    /// <summary>Lines describing how <paramref name="after"/> differs from <paramref name="before"/> (+ added, - removed, ~ changed).</summary>
    public static List<string> Diff(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after)
    {
        var lines = new List<string>();
        foreach (var key in before.Keys.Union(after.Keys).Order(StringComparer.Ordinal))
        {
            var had = before.TryGetValue(key, out var old);
            var has = after.TryGetValue(key, out var now);
            if (had && !has) lines.Add($"- {key}");
            else if (!had && has) lines.Add($"+ {key,-26} {Short(now!)}".TrimEnd());
            else if (old != now) lines.Add($"~ {key,-26} {Short(old!)} -> {Short(now!)}");
        }

        return lines;
    }

    /// <summary>"size sha256" shortened for display: "69 B 5e6f7a8b".</summary>
    public static string Short(string value)
    {
        if (value == "dir") return "";
        var parts = value.Split(' ');
        return parts.Length == 2 && parts[1].Length == 64 ? $"{parts[0]} B {parts[1][..8]}" : value;
    }
}
