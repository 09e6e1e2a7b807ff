namespace Patching.IO;

/// <summary>
/// Windows' rule for paths below a confined root (an install, a state directory): no step may pass through a reparse
/// point that redirects a name (a symlink, a junction, a volume mount point), whether it is a directory on the way or the
/// entry itself. A walk never descends into one (it reports it as a symlink), but a process of the player can put one in
/// place of a directory afterwards, and a step by full path would then write, link or delete outside, with the rights of
/// the updater.
/// </summary>
/// <remarks>
/// Reparse points that do not redirect a name (cloud-file placeholders, deduplicated files) are not links and pass. The
/// check reads the attributes of each component before the step: it is not held across it, so a junction swapped in
/// between the check and the step is still followed (Windows would need handle-relative opens, NtCreateFile with a root
/// directory handle, to close that window).
/// </remarks>
internal static class ReparsePoints
{
    /// <summary>What a component is: whether it exists, and whether it is a name-redirecting reparse point.</summary>
    internal readonly record struct Component(bool Exists, bool Redirects);

    /// <summary>
    /// The first component of <paramref name="path"/> below its confined root (the directories on the way, then the
    /// entry itself when <paramref name="includeLast"/>) that redirects, or null. Paths below no confined root, and the
    /// root itself, are not checked: the directories above an install are the user's choice.
    /// </summary>
    public static string? FirstRedirect(string path, bool includeLast, Func<string, Component> inspect)
    {
        var root = ConfinedRoots.Of(Path.TrimEndingDirectorySeparator(path));
        if (root is null) return null;
        var components = new List<string>();
        for (var p = includeLast ? path : Path.GetDirectoryName(path); p is not null && p.Length > root.Length; p = Path.GetDirectoryName(p))
            components.Add(p);
        for (var i = components.Count - 1; i >= 0; i--)
        {
            var c = inspect(components[i]);
            if (!c.Exists) return null; // nothing further down exists either: the step reports it
            if (c.Redirects) return components[i];
        }

        return null;
    }

    /// <summary>Throws <see cref="PatchErrorCode.SymlinkEscape"/> when <paramref name="path"/> would pass through a redirecting reparse point.</summary>
    public static void Refuse(string path, bool includeLast, Func<string, Component> inspect)
    {
        if (FirstRedirect(path, includeLast, inspect) is { } at)
            throw new PatcherException(PatchErrorCode.SymlinkEscape, $"'{at}' is a reparse point (a symlink or junction); refusing to reach '{path}' through it", path);
    }

    /// <summary>The component as the file system reports it: a reparse point whose link target .NET can read redirects.</summary>
    public static Component Inspect(string path)
    {
        try
        {
            var attributes = File.GetAttributes(path);
            if ((attributes & FileAttributes.ReparsePoint) == 0) return new Component(true, false);
            FileSystemInfo info = (attributes & FileAttributes.Directory) != 0 ? new DirectoryInfo(path) : new FileInfo(path);
            return new Component(true, info.LinkTarget is not null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Component(false, false);
        }
    }
}
