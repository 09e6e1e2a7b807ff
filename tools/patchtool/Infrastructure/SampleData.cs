namespace PatchTool.Infrastructure;

/// <summary>
/// The sample game in fixtures/sample (v1, v2 and layout.txt), copied next to patchtool at build time.
/// Git stores neither empty directories nor, on every checkout, executable bits, so each copy applies
/// layout.txt afterwards: every copy of v1 or v2 is the same tree, byte for byte.
/// </summary>
internal static class SampleData
{
    public const string LayoutFileName = "layout.txt";

    /// <summary>
    /// The sample root (holding v1/, v2/, layout.txt): fixtures/sample of the checkout patchtool was built in,
    /// else the copy beside patchtool (an installed tool). The checkout wins so a stale copy never hides an edit.
    /// </summary>
    public static string Locate()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Join(dir.FullName, "fixtures", "sample");
                if (File.Exists(Path.Join(candidate, LayoutFileName))) return candidate;
            }
        }

        var beside = Path.Join(AppContext.BaseDirectory, "sample");
        if (File.Exists(Path.Join(beside, LayoutFileName))) return beside;
        throw new DirectoryNotFoundException($"the sample data is neither in a checkout's fixtures/sample nor beside patchtool ({beside})");
    }

    /// <summary>Copies sample version <paramref name="version"/> (<c>v1</c> or <c>v2</c>) to <paramref name="destination"/>.</summary>
    public static void CopyVersion(string sampleRoot, string version, string destination)
    {
        var source = Path.Join(sampleRoot, version);
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"no sample version '{version}' in {sampleRoot}");
        CopyTree(source, destination);
        foreach (var (kind, path) in ReadLayout(sampleRoot))
        {
            if (!path.StartsWith(version + "/", StringComparison.Ordinal)) continue;
            var full = Path.Join(destination, path[(version.Length + 1)..]);
            switch (kind)
            {
                case "dir":
                    Directory.CreateDirectory(full);
                    break;
                case "exec" when !OperatingSystem.IsWindows():
                    File.SetUnixFileMode(full, File.GetUnixFileMode(full)
                        | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
                    break;
            }
        }
    }

    /// <summary>Copies files and directories (not symlinks) recursively; the destination must not exist or be empty.</summary>
    public static void CopyTree(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var entry in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            var target = Path.Join(destination, entry.Name);
            if (entry.LinkTarget is not null) continue;
            if (entry is DirectoryInfo) CopyTree(entry.FullName, target);
            else File.Copy(entry.FullName, target);
        }
    }

    private static IEnumerable<(string Kind, string Path)> ReadLayout(string sampleRoot)
    {
        foreach (var raw in File.ReadAllLines(Path.Join(sampleRoot, LayoutFileName)))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || parts[0] is not ("dir" or "exec"))
                throw new InvalidDataException($"{LayoutFileName}: cannot read line '{line}'");
            yield return (parts[0], parts[1]);
        }
    }
}
