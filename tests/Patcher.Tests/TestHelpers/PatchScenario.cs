using System.Security.Cryptography;
using System.Text;
using Patching.Building;
using Patching.Signing;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// A temporary world for one test: an old and a new version tree, a signed patch between them, and an install
/// directory (a copy of the old tree) inside its own parent folder, so the state directory beside it is also
/// inside the test's root. Everything lives under one temp folder that is deleted on dispose.
/// </summary>
internal sealed class PatchScenario : IDisposable
{
    public PatchScenario(string? name = null)
    {
        Root = Path.Join(Path.GetTempPath(), "patcher-tests", (name ?? "s") + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        OldTree = Dir("v1");
        NewTree = Dir("v2");
        PatchDir = Path.Join(Root, "patch");
        InstallDir = Path.Join(Dir("parent"), "game");
        (PrivateKey, PublicKey) = SigningKeys.Generate();
    }

    public string Root { get; }
    public string OldTree { get; }
    public string NewTree { get; }
    public string PatchDir { get; }
    public string InstallDir { get; }
    public string ParentDir => Path.GetDirectoryName(InstallDir)!;
    public string PrivateKey { get; }
    public string PublicKey { get; }

    /// <summary>The manifest format <see cref="BuildPatch"/> and <see cref="BuildFull"/> write (the suites written for format 1 keep it).</summary>
    public int Format { get; set; } = 1;

    /// <summary>Sets <see cref="Format"/>.</summary>
    public PatchScenario WithFormat(int format)
    {
        Format = format;
        return this;
    }

    /// <summary>
    /// Cleanup inline, so a test sees the final tree (and a listing of the state directory) when Apply returns; the
    /// background cleanup has tests of its own.
    /// </summary>
    public PatcherOptions Options => new() { TrustedKeys = [PublicKey], CleanupInBackground = false };

    public string Dir(string name)
    {
        var path = Path.Join(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>
    /// Writes a small game: v1 and v2 differ by changed, added, removed and renamed files, a new empty
    /// directory, a removed directory and an executable.
    /// </summary>
    public PatchScenario WithSmallGame(int extraFiles = 0, int changeEvery = 10)
    {
        Write(OldTree, "game.exe", "engine v1", executable: true);
        Write(OldTree, "data/level1.pak", Bytes("level1", 40_000));
        Write(OldTree, "data/level2.pak", Bytes("level2-old", 20_000));
        Write(OldTree, "data/old-only.txt", "removed in v2");
        Write(OldTree, "legacy/readme.txt", "legacy dir goes away");
        Write(OldTree, "docs/manual.txt", "manual");
        Write(NewTree, "game.exe", "engine v2", executable: true);
        Write(NewTree, "data/level1.pak", Bytes("level1", 40_000));
        Write(NewTree, "data/level2.pak", Bytes("level2-new", 21_000));
        Write(NewTree, "data/level3.pak", Bytes("level3", 30_000));
        Write(NewTree, "docs/guide.txt", "manual");
        Directory.CreateDirectory(Path.Join(NewTree, "cache/empty"));
        for (var i = 0; i < extraFiles; i++)
        {
            Write(OldTree, $"assets/a{i:D4}.bin", Bytes("asset" + i, 1000 + i));
            Write(NewTree, $"assets/a{i:D4}.bin", Bytes(i % changeEvery == 0 ? "changed" + i : "asset" + i, 1000 + i));
        }

        return this;
    }

    public BuildResult BuildPatch(string version = "2.0.0", string fromVersion = "1.0.0", string? outDir = null, string? fromDir = null, string? toDir = null, string product = "demo-game") =>
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = fromDir ?? OldTree,
            ToDir = toDir ?? NewTree,
            OutDir = outDir ?? PatchDir,
            Product = product,
            Version = version,
            FromVersion = fromVersion,
            PrivateKeyPem = PrivateKey,
            Format = Format,
        });

    /// <summary>Builds a full package (no base) for the given tree.</summary>
    public BuildResult BuildFull(string tree, string outDir, string version, string product = "demo-game") =>
        PatchBuilder.Build(new BuildRequest { ToDir = tree, OutDir = outDir, Product = product, Version = version, PrivateKeyPem = PrivateKey, Format = Format });

    /// <summary>Copies the old tree to the install directory.</summary>
    public PatchScenario Install(string? tree = null)
    {
        CopyTree(tree ?? OldTree, InstallDir);
        return this;
    }

    /// <summary>Installs v1 through Patcher itself, so the journal knows version 1.0.0.</summary>
    public PatchScenario InstallThroughPatcher()
    {
        var full = Path.Join(Root, "full-v1");
        BuildFull(OldTree, full, "1.0.0");
        Directory.CreateDirectory(InstallDir);
        Patcher.Apply(InstallDir, full, Options);
        return this;
    }

    public static void Write(string root, string rel, string text, bool executable = false) =>
        Write(root, rel, Encoding.UTF8.GetBytes(text), executable);

    public static void Write(string root, string rel, byte[] content, bool executable = false)
    {
        var path = Path.Join(root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        if (executable && !OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    /// <summary>Deterministic pseudo-random bytes (compressible enough to exercise Brotli, not trivially).</summary>
    public static byte[] Bytes(string seed, int length)
    {
        var result = new byte[length];
        var block = SHA256.HashData(Encoding.UTF8.GetBytes(seed));
        for (var i = 0; i < length; i++)
        {
            if (i % 32 == 0 && i > 0) block = SHA256.HashData(block);
            result[i] = (i / 64 % 3 == 0) ? (byte)'x' : block[i % 32];
        }

        return result;
    }

    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Join(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Join(to, Path.GetRelativePath(from, file));
            File.Copy(file, dest, overwrite: true);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dest, File.GetUnixFileMode(file));
        }
    }

    /// <summary>
    /// Sorted listing of every entry under <paramref name="root"/>: directories, and files with size, SHA-256
    /// and executable bit. Two trees are identical exactly when their listings are equal.
    /// </summary>
    public static List<string> Listing(string root, Func<string, bool>? exclude = null)
    {
        var lines = new List<string>();
        if (!Directory.Exists(root)) return ["<missing>"];
        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var rel = Path.GetRelativePath(root, entry).Replace('\\', '/');
            if (exclude?.Invoke(rel) == true) continue;
            var info = new FileInfo(entry);
            if (info.LinkTarget is not null) lines.Add($"L {rel} -> {info.LinkTarget}");
            else if (Directory.Exists(entry)) lines.Add($"D {rel}");
            else
            {
                var exec = !OperatingSystem.IsWindows() && (info.UnixFileMode & UnixFileMode.UserExecute) != 0 ? "x" : "-";
                lines.Add($"F {rel} {info.Length} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry)))} {exec}");
            }
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    public void Dispose() => TempDir.Remove(Root);
}
