namespace Patching.IO;

/// <summary>
/// Windows' rule for paths below a confined root (an install, a state directory): no step may pass through a reparse
/// point that redirects a name (a symlink, a junction, a volume mount point), whether it is a directory on the way or the
/// entry itself where the step would follow it. A walk never descends into one (it reports it as a symlink), but a
/// process of the player can put one in place of a directory afterwards, and a step by full path would then write, link
/// or delete outside, with the rights of the updater.
/// </summary>
/// <remarks>
/// <para>
/// The rule is enforced by <see cref="Hold{T}"/>: each component from the root down is opened without following it, its
/// reparse tag is read from that handle, and the handle stays open until the step is done. The Windows opener
/// (<see cref="WindowsFileOps"/>) shares read and write but not delete, so while the step runs no directory on the way can
/// be renamed, deleted or replaced by a junction: the full path the step then uses names exactly the directories that
/// were checked.
/// </para>
/// <para>
/// Reparse points that do not redirect a name (cloud-file placeholders, deduplicated files) pass: Windows marks the ones
/// that do with the name-surrogate bit of their tag.
/// </para>
/// </remarks>
internal static class ReparsePoints
{
    /// <summary>FILE_ATTRIBUTE_REPARSE_POINT.</summary>
    internal const uint ReparsePointAttribute = 0x400;

    /// <summary>The bit of a reparse tag that marks it as standing for another named entity (IsReparseTagNameSurrogate).</summary>
    internal const uint NameSurrogateBit = 0x20000000;

    /// <summary>What a component is: whether it exists, and whether it is a name-redirecting reparse point.</summary>
    internal readonly record struct Component(bool Exists, bool Redirects);

    /// <summary>A component opened by <see cref="Hold{T}"/>'s opener: the handle (null when none was opened) and what it is.</summary>
    internal readonly record struct Opened<T>(T? Handle, Component What)
        where T : class, IDisposable;

    /// <summary>
    /// Whether an entry with these attributes and reparse tag (as FileAttributeTagInfo reports them) redirects a name:
    /// a reparse point whose tag is a name surrogate (junction/mount point 0xA0000003, symlink 0xA000000C, WSL symlink).
    /// </summary>
    public static bool Redirects(uint attributes, uint tag) => (attributes & ReparsePointAttribute) != 0 && (tag & NameSurrogateBit) != 0;

    /// <summary>
    /// The components of <paramref name="path"/> below its confined root, outermost first: the directories on the way,
    /// then the entry itself when <paramref name="includeLast"/>. Empty for a path below no confined root and for the root
    /// itself: the directories at and above an install are the user's choice.
    /// </summary>
    public static IReadOnlyList<string> OnTheWay(string path, bool includeLast, out string? root)
    {
        root = ConfinedRoots.Of(Path.TrimEndingDirectorySeparator(path));
        if (root is null) return [];
        var components = new List<string>();
        for (var p = includeLast ? path : Path.GetDirectoryName(path); p is not null && p.Length > root.Length; p = Path.GetDirectoryName(p))
            components.Add(p);
        components.Reverse();
        return components;
    }

    /// <summary>
    /// Opens the confined root of <paramref name="path"/> (with <paramref name="openRoot"/>, following it: it is the
    /// user's choice) and then each component below it, outermost first, with <paramref name="open"/>, which must not
    /// follow it (its second argument is true for the entry itself, false for a directory on the way); keeps every
    /// handle open until the result is disposed. Stops at the first component that does not
    /// exist (the step reports it). Throws <see cref="PatchErrorCode.SymlinkEscape"/> naming the first component that
    /// redirects, after closing everything it opened. A path below no confined root, and the root itself, hold nothing (a
    /// held root could not be renamed or removed by the step itself).
    /// </summary>
    public static Held<T> Hold<T>(string path, bool includeLast, Func<string, T?> openRoot, Func<string, bool, Opened<T>> open)
        where T : class, IDisposable
    {
        var components = OnTheWay(path, includeLast, out var root);
        var held = new Held<T>();
        if (root is null || Path.TrimEndingDirectorySeparator(path).Length <= root.Length) return held;
        try
        {
            if (openRoot(root) is { } r) held.Add(r);
            for (var i = 0; i < components.Count; i++)
            {
                var component = components[i];
                var (handle, what) = open(component, includeLast && i == components.Count - 1);
                if (handle is not null) held.Add(handle);
                if (!what.Exists) break;
                if (what.Redirects) throw Refusal(component, path);
            }

            return held;
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>The <see cref="PatchErrorCode.SymlinkEscape"/> of a step on <paramref name="path"/> that would pass through <paramref name="at"/>.</summary>
    public static PatcherException Refusal(string at, string path) =>
        new(PatchErrorCode.SymlinkEscape, $"'{at}' is a reparse point (a symlink or junction); refusing to reach '{path}' through it", path);

    /// <summary>The handles of the components on a path's way, closed innermost first when disposed.</summary>
    internal sealed class Held<T> : IDisposable
        where T : class, IDisposable
    {
        private readonly List<T> _handles = [];

        public int Count => _handles.Count;

        public void Add(T handle) => _handles.Add(handle);

        public void Dispose()
        {
            for (var i = _handles.Count - 1; i >= 0; i--) _handles[i].Dispose();
            _handles.Clear();
        }
    }
}
