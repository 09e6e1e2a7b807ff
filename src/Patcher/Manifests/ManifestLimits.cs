namespace Patching;

/// <summary>Upper bounds applied before and after parsing, so a hostile manifest cannot exhaust memory or disk.</summary>
public sealed record ManifestLimits
{
    /// <summary>Largest manifest.json accepted, checked before parsing.</summary>
    public long MaxManifestBytes { get; init; } = 64L * 1024 * 1024;
    /// <summary>Largest signature file accepted.</summary>
    public long MaxSignatureBytes { get; init; } = 64 * 1024;
    /// <summary>Most files (target plus base) a manifest may list.</summary>
    public int MaxFiles { get; init; } = 1_000_000;
    /// <summary>Largest single file.</summary>
    public long MaxFileBytes { get; init; } = 256L * 1024 * 1024 * 1024;
    /// <summary>Largest total of target file sizes.</summary>
    public long MaxTotalBytes { get; init; } = 4L * 1024 * 1024 * 1024 * 1024;

    /// <summary>The defaults.</summary>
    public static ManifestLimits Default { get; } = new();
}
