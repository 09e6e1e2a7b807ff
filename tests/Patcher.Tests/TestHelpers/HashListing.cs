using System.Globalization;
using System.Security.Cryptography;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The identity of a tree as sorted lines: <c>"path size sha256"</c> for each file and <c>"path/"</c> for each
/// directory (so empty directories count), '/'-separated, ordinal order. Two trees are equal, byte for byte,
/// when their listings are equal. Symlinks are listed as <c>"path -> target"</c> and not followed.
/// </summary>
internal static class HashListing
{
    public static IReadOnlyList<string> Of(string root, Func<string, bool>? exclude = null)
    {
        var lines = new List<string>();
        Walk(root, "", lines, exclude);
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    /// <summary>The listing as one string, for readable assertion failures.</summary>
    public static string Text(string root, Func<string, bool>? exclude = null) => string.Join('\n', Of(root, exclude));

    private static void Walk(string dir, string prefix, List<string> lines, Func<string, bool>? exclude)
    {
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
        {
            var rel = prefix + entry.Name;
            if (exclude?.Invoke(rel) == true) continue;
            if (entry.LinkTarget is not null)
            {
                lines.Add($"{rel} -> {entry.LinkTarget}");
            }
            else if (entry is DirectoryInfo)
            {
                lines.Add(rel + "/");
                Walk(entry.FullName, rel + "/", lines, exclude);
            }
            else
            {
                using var stream = File.OpenRead(entry.FullName);
                var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{rel} {stream.Length} {hash}"));
            }
        }
    }
}
