namespace Patching.Sources;

/// <summary>The names of a release store's objects, and the check every source applies to a name before using it.</summary>
internal static class SourceNames
{
    public static string Channel(string channel) => $"channels/{CheckSegment(channel, "channel")}.json";
    public static string ChannelSignature(string channel) => $"channels/{CheckSegment(channel, "channel")}.sig";
    public static string Manifest(string version) => $"versions/{CheckSegment(version, "version")}/manifest.json";
    public static string ManifestSignature(string version) => $"versions/{CheckSegment(version, "version")}/manifest.sig";
    public static string Blob(string sha256) => $"blobs/{sha256[..2]}/{sha256}";
    public static string Piece(string sha256) => $"pieces/{sha256[..2]}/{sha256}.zst";
    public static string Index(string version) => $"versions/{CheckSegment(version, "version")}/index.json";
    public static string IndexSignature(string version) => $"versions/{CheckSegment(version, "version")}/index.sig";
    public static string DeltaDir(string version, string fromVersion) => $"versions/{CheckSegment(version, "version")}/deltas/{CheckSegment(fromVersion, "version")}";

    /// <summary>
    /// Throws unless <paramref name="name"/> is a plain relative name: lower-case letters, digits, <c>. - _</c> and '/',
    /// no empty, <c>.</c> or <c>..</c> segment. A source never reads outside its root, whatever a signed file says.
    /// </summary>
    public static string Check(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var segment in name.Split('/'))
        {
            if (segment is "" or "." or ".." || !segment.All(IsNameChar))
                throw new ArgumentException($"'{name}' is not a valid store object name", nameof(name));
        }

        return name;
    }

    private static bool IsNameChar(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-' or '_' or '+';

    private static string CheckSegment(string value, string what)
    {
        if (value.Length == 0 || value.Length > 100 || value is "." or ".." || !value.All(IsNameChar))
            throw new PatcherException(PatchErrorCode.ManifestMalformed, $"{what} '{value}' cannot name a store object (lower-case letters, digits, '.', '-', '_', '+')");
        return value;
    }
}
