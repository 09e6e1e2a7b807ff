using System.Text;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// Deterministic trees: the same seed always writes the same bytes at the same paths, on every machine
/// (seeded <see cref="Random"/> is stable across .NET versions), so builds from them can be compared exactly.
/// </summary>
internal static class TreeFactory
{
    /// <summary>
    /// Writes <paramref name="files"/> files under <paramref name="root"/> in a few nested directories: text
    /// (compressible) and binary (not), sizes from 0 bytes to a few KiB, one executable, one empty directory.
    /// </summary>
    public static void Write(string root, int seed, int files = 12)
    {
        Directory.CreateDirectory(root);
        var random = new Random(seed);
        string[] dirs = ["", "data", "data/levels", "bin", "docs/en"];
        for (var i = 0; i < files; i++)
        {
            var dir = dirs[i % dirs.Length];
            var binary = i % 3 == 0;
            var name = binary ? $"file{i:00}.dat" : $"file{i:00}.txt";
            var size = i == 1 ? 0 : random.Next(1, 6000);
            WriteFile(root, dir.Length == 0 ? name : $"{dir}/{name}", Content(random, size, binary), executable: dir == "bin" && i % 2 == 1);
        }

        Directory.CreateDirectory(Path.Join(root, "empty"));
    }

    /// <summary>
    /// Writes an old and a new tree that differ in every way a patch must handle: changed, added, removed and
    /// renamed files, a new empty directory, a removed directory, a new executable.
    /// </summary>
    public static (string Old, string New) WritePair(TempDir temp, int seed, int files = 12)
    {
        var oldDir = temp["old"];
        var newDir = temp["new"];
        Write(oldDir, seed, files);
        Write(newDir, seed, files);
        var random = new Random(seed + 1);
        WriteFile(newDir, "file00.dat", Content(random, 3000, binary: true));                 // changed
        WriteFile(newDir, "data/file06.txt", Content(random, 100, binary: false));            // changed
        File.Delete(Path.Join(newDir, "data/levels/file02.txt"));                              // removed
        File.Move(Path.Join(newDir, "bin/file03.dat"), Path.Join(newDir, "bin/renamed03.dat")); // renamed: content reused from the base
        WriteFile(newDir, "added/new.txt", Content(random, 5000, binary: false));             // added, compressible
        WriteFile(newDir, "bin/tool.sh", Encoding.ASCII.GetBytes("#!/bin/sh\necho tool\n"), executable: true); // added executable
        Directory.CreateDirectory(Path.Join(newDir, "new-empty"));                             // added empty directory
        Directory.Delete(Path.Join(newDir, "empty"));                                          // removed empty directory
        return (oldDir, newDir);
    }

    public static void WriteFile(string root, string relative, byte[] content, bool executable = false)
    {
        var full = Path.Join(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
        if (!OperatingSystem.IsWindows())
        {
            var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            if (executable) mode |= UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            File.SetUnixFileMode(full, mode);
        }
    }

    /// <summary>Text from a small vocabulary (compresses well) or uniform random bytes (does not).</summary>
    public static byte[] Content(Random random, int size, bool binary)
    {
        var bytes = new byte[size];
        if (binary)
        {
            random.NextBytes(bytes);
            return bytes;
        }

        string[] words = ["level", "sword", "dragon", "castle", "gold", "quest", "\n", "map", "shield", "npc"];
        var sb = new StringBuilder(size + 16);
        while (sb.Length < size) sb.Append(words[random.Next(words.Length)]).Append(' ');
        return Encoding.ASCII.GetBytes(sb.ToString(0, size));
    }
}
