namespace Patching.Manifests;

/// <summary>
/// Versions are dotted non-negative integers (1 to 4 parts, e.g. <c>1.4.2</c>), compared numerically with
/// missing parts as zero. A deliberately narrow grammar: anti-rollback must never depend on how a free-form
/// label happens to sort.
/// </summary>
internal readonly record struct PatchVersion(long Major, long Minor, long Patch, long Build) : IComparable<PatchVersion>
{
    public static bool TryParse(string? text, out PatchVersion version)
    {
        version = default;
        if (string.IsNullOrEmpty(text) || text.Length > 64) return false;
        var parts = text.Split('.');
        if (parts.Length is < 1 or > 4) return false;
        Span<long> values = stackalloc long[4];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = parts[i];
            if (p.Length == 0 || p.Length > 15 || !p.All(char.IsAsciiDigit)) return false;
            values[i] = long.Parse(p, System.Globalization.CultureInfo.InvariantCulture);
        }

        version = new PatchVersion(values[0], values[1], values[2], values[3]);
        return true;
    }

    public static PatchVersion Parse(string text, string what) =>
        TryParse(text, out var v)
            ? v
            : throw new PatcherException(PatchErrorCode.ManifestMalformed,
                $"{what} '{text}' is not a version (1 to 4 dot-separated numbers, e.g. 1.4.2)");

    public int CompareTo(PatchVersion other) =>
        (Major, Minor, Patch, Build).CompareTo((other.Major, other.Minor, other.Patch, other.Build));

    public static bool operator <(PatchVersion a, PatchVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(PatchVersion a, PatchVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(PatchVersion a, PatchVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(PatchVersion a, PatchVersion b) => a.CompareTo(b) >= 0;
}
