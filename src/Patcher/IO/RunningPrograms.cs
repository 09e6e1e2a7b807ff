namespace Patching.IO;

/// <summary>A process using an install: its id, its name and how (working directory, open file, mapped file).</summary>
internal readonly record struct ProgramUse(int ProcessId, string Name, string How, string Path);

/// <summary>
/// Finds the processes that use a directory tree. Linux, through <c>/proc</c>: a working directory, an open file or a
/// mapped file inside it. A game running from the install keeps its working directory and open files on the old tree
/// after a swap, and would write its saves there, into what becomes the trash. Processes of other users are seen only
/// when this process may read their <c>/proc</c> entries (root). Windows, through the Restart Manager: the processes
/// holding one of the tree's files open or mapped (see <see cref="WindowsFiles"/>; a working directory is not seen).
/// Elsewhere (macOS) nothing is found.
/// </summary>
internal static class RunningPrograms
{
    /// <summary>
    /// How many of a large tree's files are registered with the Restart Manager. It compares every registered file with
    /// every process's handles and modules, so its cost grows with the count; a few thousand answer within a second.
    /// </summary>
    internal const int MaxRegisteredFiles = 2000;

    /// <summary>
    /// The processes using <paramref name="directory"/> (or nothing when it does not exist on this machine's disk:
    /// a simulated tree has no processes).
    /// </summary>
    public static List<ProgramUse> Using(string directory)
    {
        var root = Path.TrimEndingDirectorySeparator(directory);
        if (!Directory.Exists(root)) return [];
        if (OperatingSystem.IsWindows())
            return RestartManager.Holders(WindowsFiles(root)).Where(h => h.ProcessId != Environment.ProcessId)
                .Select(h => new ProgramUse(h.ProcessId, h.Name, "open file", root)).ToList();
        var found = new List<ProgramUse>();
        if (!OperatingSystem.IsLinux()) return found;
        bool Inside(string? p) => p is not null && (p == root || p.StartsWith(root + "/", StringComparison.Ordinal));
        var self = Environment.ProcessId;
        foreach (var entry in SafeList(() => Directory.EnumerateDirectories("/proc")))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid) || pid == self) continue;
            if ((Cwd(entry, Inside) ?? OpenFile(entry, Inside) ?? MappedFile(entry, Inside)) is { } use)
                found.Add(new ProgramUse(pid, Safe(() => File.ReadAllText(Path.Join(entry, "comm")).Trim()) ?? "?", use.Item1, use.Item2));
        }

        return found;
    }

    private static (string, string)? Cwd(string entry, Func<string?, bool> inside) =>
        Safe(() => new DirectoryInfo(Path.Join(entry, "cwd")).LinkTarget) is var cwd && inside(cwd) ? ("working directory", cwd!) : null;

    private static (string, string)? OpenFile(string entry, Func<string?, bool> inside) =>
        SafeList(() => Directory.EnumerateFileSystemEntries(Path.Join(entry, "fd"))).Select(fd => Safe(() => new FileInfo(fd).LinkTarget))
            .FirstOrDefault(inside) is { } file ? ("open file", file) : null;

    /// <summary>/proc/&lt;pid&gt;/maps: the path, when a line has one, starts at its first '/'.</summary>
    private static (string, string)? MappedFile(string entry, Func<string?, bool> inside) =>
        SafeList(() => File.ReadLines(Path.Join(entry, "maps"))).Select(l => l.IndexOf('/', StringComparison.Ordinal) is var i and >= 0 ? l[i..] : null)
            .FirstOrDefault(inside) is { } mapped ? ("mapped file", mapped) : null;

    /// <summary>"name (pid N, how path)" for the first few, for a message or a log line.</summary>
    public static string Describe(IReadOnlyCollection<ProgramUse> users) =>
        string.Join(", ", users.Take(5).Select(u => $"{u.Name} (pid {u.ProcessId}, {u.How} {u.Path})")) + (users.Count > 5 ? $" and {users.Count - 5} more" : "");

    /// <summary>
    /// The files of <paramref name="root"/> registered with the Restart Manager: all of them in a tree of at most
    /// <see cref="MaxRegisteredFiles"/> files; in a larger one, its executables and libraries first (a running program
    /// always holds its own image and its DLLs mapped for as long as it runs, whereas it opens a data file only while
    /// reading it), then other files up to the bound. The files a patch changes are not known yet when the policy is
    /// applied (before the plan), so the choice rests on what a running program is certain to hold.
    /// </summary>
    internal static string[] WindowsFiles(string root)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        var all = SafeList(() => Directory.EnumerateFiles(root, "*", options));
        if (all.Count <= MaxRegisteredFiles) return [.. all];
        static bool Image(string f) =>
            f.EndsWith(".exe", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        return [.. all.Where(Image).Concat(all.Where(f => !Image(f))).Take(MaxRegisteredFiles)];
    }

    /// <summary>A process that exits, or one this user may not inspect, is skipped.</summary>
    private static string? Safe(Func<string?> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static List<string> SafeList(Func<IEnumerable<string>> read)
    {
        try
        {
            return read().ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
