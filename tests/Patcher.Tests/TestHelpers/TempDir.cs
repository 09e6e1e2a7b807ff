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

    public void Dispose() => Remove(Path);

    /// <summary>Deletes a test's folder, whatever it left behind (read-only entries, a background cleanup still running).</summary>
    public static void Remove(string path)
    {
        // A library call with CleanupInBackground (the default, as in the README example) may still be deleting its
        // trash in here: entries can vanish under the walk, so a failed attempt is retried on what is left.
        for (var attempt = 1; Directory.Exists(path); attempt++)
        {
            try
            {
                // Tests may leave read-only files or directories behind; make them deletable first.
                foreach (var entry in new DirectoryInfo(path).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
                {
                    entry.Refresh();
                    if (!entry.Exists || entry.LinkTarget is not null) continue;
                    if (entry.Attributes.HasFlag(FileAttributes.ReadOnly)) entry.Attributes &= ~FileAttributes.ReadOnly;
                    if (!OperatingSystem.IsWindows() && entry is DirectoryInfo)
                        File.SetUnixFileMode(entry.FullName, File.GetUnixFileMode(entry.FullName) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }

                Directory.Delete(path, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                if (attempt < 5)
                {
                    Thread.Sleep(50 * attempt);
                    continue;
                }

                TestContext.Progress.WriteLine($"could not remove {path}: {ex.Message}");
                return;
            }
        }
    }
}
