using System.Text;

namespace Patching.Manifests;

/// <summary>
/// Validation of every relative path a manifest names (DESIGN §6). A path that passes is safe to join
/// to the install directory on Windows, Linux and macOS alike.
/// </summary>
internal static class PathRules
{
    public const int MaxPathLength = 1024;
    public const int MaxSegmentLength = 255;

    /// <summary>The install's top-level name reserved for Patcher's own state (layered strategy, read-only parent).</summary>
    public const string ReservedStateName = ".patcher";

    /// <summary>
    /// The file inside an install that holds its identity where the file system numbers no directories (see
    /// <c>InstallIdentity</c>). Patcher's, never a player's file: no manifest may name it, and walks of an install or of a
    /// tree being published leave it out.
    /// </summary>
    public const string InstallMarkerName = ".patcher-install";

    /// <summary>True for the install marker's path relative to the install's root (any case: Windows ignores it).</summary>
    public static bool IsInstallMarker(string relativePath) => relativePath.Equals(InstallMarkerName, StringComparison.OrdinalIgnoreCase);

    private static readonly HashSet<string> ReservedWindowsNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
        "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "COM¹", "COM²", "COM³",
        "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
        "LPT¹", "LPT²", "LPT³",
    };

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> ReservedWindowsNamesBySpan =
        ReservedWindowsNames.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Returns null when <paramref name="path"/> is safe, otherwise the reason it is not.</summary>
    /// <remarks>
    /// Runs for every path of a manifest (200k at 100k files), so it allocates nothing for a safe path: segments are
    /// spans, and a path of ASCII characters skips the normalisation check (ASCII text is always in form C).
    /// </remarks>
    public static string? Check(string path)
    {
        if (string.IsNullOrEmpty(path)) return "path is empty";
        if (path.Length > MaxPathLength) return $"path is longer than {MaxPathLength} characters";
        if (!System.Text.Ascii.IsValid(path))
        {
            // IsNormalized throws for text that is not valid Unicode (a lone surrogate, U+FFFE): refuse it like any other bad path.
            try
            {
                if (!path.IsNormalized(NormalizationForm.FormC)) return "path is not in Unicode normalization form C";
            }
            catch (ArgumentException)
            {
                return "path contains text that is not valid Unicode";
            }
        }

        if (path[0] == '/' || path[0] == '\\') return "path is absolute";
        if (path.Contains('\\', StringComparison.Ordinal)) return "path contains a backslash (only '/' separates segments)";
        if (path.Contains(':', StringComparison.Ordinal)) return "path contains ':' (drive letter or alternate data stream)";
        foreach (var c in path)
        {
            if (char.IsControl(c)) return "path contains a control character";
            if (c is '<' or '>' or '"' or '|' or '?' or '*') return $"path contains '{c}', which Windows forbids";
        }

        var span = path.AsSpan();
        var slash = span.IndexOf('/');
        if ((slash < 0 ? span : span[..slash]).Equals(ReservedStateName, StringComparison.OrdinalIgnoreCase))
            return $"'{ReservedStateName}' is where Patcher keeps its state when nothing beside the install is writable";
        if ((slash < 0 ? span : span[..slash]).Equals(InstallMarkerName, StringComparison.OrdinalIgnoreCase))
            return $"'{InstallMarkerName}' is where Patcher records which install this is";
        foreach (var range in span.Split('/'))
        {
            var segment = span[range];
            if (segment.Length == 0) return "path has an empty segment";
            if (segment is "." or "..") return $"path has a '{segment}' segment";
            if (segment.Length > MaxSegmentLength) return $"a path segment is longer than {MaxSegmentLength} characters";
            // Linux and macOS limit a name to 255 bytes (NAME_MAX), and é or 中 take two or three of them in UTF-8.
            if (System.Text.Encoding.UTF8.GetByteCount(segment) > MaxSegmentLength) return $"a path segment is longer than {MaxSegmentLength} bytes in UTF-8";
            if (segment[^1] is '.' or ' ') return "a path segment ends with a dot or space (Windows strips them)";
            var dot = segment.IndexOf('.');
            var stem = (dot < 0 ? segment : segment[..dot]).TrimEnd(' ');
            if (ReservedWindowsNamesBySpan.Contains(stem)) return $"path uses the Windows reserved name '{stem}'";
        }

        return null;
    }

    /// <summary>
    /// Whether this platform's file systems compare names without case by default (NTFS on Windows, APFS and HFS+ on
    /// macOS). A Linux directory with ext4's casefold attribute does too, and is not detected.
    /// </summary>
    public static bool PlatformIgnoresCase => OperatingSystem.IsWindows() || OperatingSystem.IsMacOS();

    /// <summary>
    /// Two paths collide on a case-insensitive, normalising file system when their <see cref="CollisionForm"/>s are
    /// equal under this comparer: the same as comparing the paths in normalisation form C, upper-cased with the
    /// invariant culture, without making that copy of every ASCII path (200k copies at 100k files).
    /// </summary>
    public static IEqualityComparer<string> CollisionComparer { get; } = new CollisionFormComparer();

    /// <summary>
    /// ASCII case folded where either side is ASCII; two non-ASCII forms (already upper-cased) compared exactly. The
    /// framework's own case tables can fold letters the culture data does not upper-case (scripts added in a newer Unicode
    /// version than the system's ICU): folding those would call names equal that the upper-cased key keeps apart.
    /// An ASCII path can only equal a form that is ASCII too, so ignoring ASCII case there is exact. The hash ignores case
    /// throughout, which is consistent with both.
    /// </summary>
    private sealed class CollisionFormComparer : IEqualityComparer<string>
    {
        public bool Equals(string? x, string? y) =>
            x is null || y is null ? ReferenceEquals(x, y)
            : Ascii.IsValid(x) || Ascii.IsValid(y) ? string.Equals(x, y, StringComparison.OrdinalIgnoreCase)
            : string.Equals(x, y, StringComparison.Ordinal);

        public int GetHashCode(string obj) => StringComparer.OrdinalIgnoreCase.GetHashCode(obj);
    }

    /// <summary>
    /// An ASCII path as it is (the comparer folds ASCII case exactly as upper-casing would); any other path in form C and
    /// upper-cased. The comparer alone would not do for those: it does not fold a non-ASCII letter into ASCII, as
    /// upper-casing does (U+017F, the long s, upper-cases to S).
    /// </summary>
    public static string CollisionForm(string path) =>
        Ascii.IsValid(path) ? path : path.Normalize(NormalizationForm.FormC).ToUpperInvariant();

    /// <summary>The length of <paramref name="relative"/>'s parent (<see cref="Parent"/>) without making it: -1 at the root.</summary>
    public static int ParentLength(string relative) => relative.LastIndexOf('/');

    /// <summary>Joins a validated relative path to a root using the platform separator.</summary>
    public static string Join(string root, string relative) => IO.RelativePath.Join(root, relative);

    /// <summary>Every proper ancestor directory of a relative path, nearest first.</summary>
    public static IEnumerable<string> Ancestors(string relative)
    {
        for (var p = Parent(relative); p.Length > 0; p = Parent(p)) yield return p;
    }

    /// <summary>Parent of a relative path, or empty string at the root.</summary>
    public static string Parent(string relative) => IO.RelativePath.Parent(relative);
}
