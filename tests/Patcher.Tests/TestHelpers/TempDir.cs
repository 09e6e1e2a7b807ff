namespace Patching.Tests.TestHelpers;

/// <summary>A fresh directory under the system temp folder, deleted (recursively) on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir(string? name = null)
    {
        var safe = string.Concat((name ?? "t").Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        if (safe.Length > 40) safe = safe[..40];
        Path = System.IO.Path.Join(System.IO.Path.GetTempPath(), "patcher-tests", $"{safe}-{Guid.NewGuid():N}"[..(safe.Length + 13)]);
        Directory.CreateDirectory(Path);
    }

    /// <summary>A temp dir named after the running NUnit test.</summary>
    public static TempDir ForCurrentTest() => new(TestContext.CurrentContext.Test.MethodName);

    public string Path { get; }

    /// <summary>A path inside the temp dir (not created).</summary>
    public string this[string relative] => System.IO.Path.Join(Path, relative);

    /// <summary>Creates (if needed) and returns a subdirectory.</summary>
    public string Dir(string relative)
    {
        var full = this[relative];
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose()
    {
        if (!Directory.Exists(Path)) return;
        try
        {
            // Tests may leave read-only files or directories behind; make them deletable first.
            foreach (var entry in new DirectoryInfo(Path).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
            {
                if (entry.LinkTarget is null && entry.Attributes.HasFlag(FileAttributes.ReadOnly))
                    entry.Attributes &= ~FileAttributes.ReadOnly;
                if (!OperatingSystem.IsWindows() && entry is DirectoryInfo && entry.LinkTarget is null)
                    File.SetUnixFileMode(entry.FullName, File.GetUnixFileMode(entry.FullName) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(Path, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TestContext.Progress.WriteLine($"could not remove {Path}: {ex.Message}");
        }
    }
}
