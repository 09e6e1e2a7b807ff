namespace Patching.IO;

/// <summary>A process using an install: its id, its name and how (working directory, open file, mapped file).</summary>
internal readonly record struct ProgramUse(int ProcessId, string Name, string How, string Path);

/// <summary>
/// Finds the processes that use a directory tree (Linux, through <c>/proc</c>): a working directory, an open file or a
/// mapped file inside it. A game running from the install keeps its working directory and open files on the old tree
/// after a swap, and would write its saves there, into what becomes the trash. Processes of other users are seen only
/// when this process may read their <c>/proc</c> entries (root); elsewhere (Windows, macOS) nothing is found.
/// </summary>
internal static class RunningPrograms
{
    public static List<ProgramUse> Using(string directory)
    {
        var found = new List<ProgramUse>();
        if (!OperatingSystem.IsLinux()) return found;
        var root = Path.TrimEndingDirectorySeparator(directory);
        bool Inside(string? p) => p is not null && (p == root || p.StartsWith(root + "/", StringComparison.Ordinal));
        var self = Environment.ProcessId;
        foreach (var entry in SafeList(() => Directory.EnumerateDirectories("/proc")))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid) || pid == self) continue;
            var name = Safe(() => File.ReadAllText(Path.Join(entry, "comm")).Trim()) ?? "?";
            var cwd = Safe(() => new DirectoryInfo(Path.Join(entry, "cwd")).LinkTarget);
            if (Inside(cwd))
            {
                found.Add(new ProgramUse(pid, name, "working directory", cwd!));
                continue;
            }

            var file = SafeList(() => Directory.EnumerateFileSystemEntries(Path.Join(entry, "fd")))
                .Select(fd => Safe(() => new FileInfo(fd).LinkTarget)).FirstOrDefault(Inside);
            if (file is not null)
            {
                found.Add(new ProgramUse(pid, name, "open file", file));
                continue;
            }

            // /proc/<pid>/maps: the path, when there is one, starts at the first '/' of the line.
            var mapped = SafeList(() => File.ReadLines(Path.Join(entry, "maps")))
                .Select(l => l.IndexOf('/', StringComparison.Ordinal) is var i and >= 0 ? l[i..] : null).FirstOrDefault(Inside);
            if (mapped is not null) found.Add(new ProgramUse(pid, name, "mapped file", mapped));
        }

        return found;
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
