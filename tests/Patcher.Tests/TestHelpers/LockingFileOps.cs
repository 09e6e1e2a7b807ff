using Patching.Commit;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system with Windows locking rules simulated on chosen paths, so the layered commit's lock
/// layers can be tested on any OS. It reports Win32 error numbers (<see cref="IFileOps.ReportsWin32Errors"/>), so
/// error 5 counts as a possible lock, as on Windows.
/// <list type="bullet">
/// <item><see cref="LockFor"/>: renames and deletes touching the path (as source or destination) fail with the given Win32 error for N attempts, then succeed.</item>
/// <item><see cref="LockForever"/>: they always fail.</item>
/// <item><see cref="RunAsExecutable"/>: a running image: renaming it away is allowed (the rule follows the file), overwriting or deleting it is refused with error 5.</item>
/// <item><see cref="DenyCreateDirectory"/>: creating that directory fails with EACCES (a parent that is not writable).</item>
/// </list>
/// Hard links and reads are not refused: Windows lets CreateHardLink and FILE_READ_ATTRIBUTES through an exclusive open.
/// </summary>
internal sealed class LockingFileOps(IFileOps inner) : FileOpsDecorator(inner)
{
    public override bool ReportsWin32Errors => true;

    private sealed class Rule
    {
        public int Remaining;
        public int Error;
        public bool Forever;
        public bool Executable;
    }

    private readonly Dictionary<string, Rule> _rules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _refusals = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deniedDirectories = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public LockingFileOps()
        : this(FileOps.Instance)
    {
    }

    public void LockFor(string path, int attempts, int win32Error) => Set(path, new Rule { Remaining = attempts, Error = win32Error });

    public void LockForever(string path, int win32Error) => Set(path, new Rule { Forever = true, Error = win32Error });

    public void RunAsExecutable(string path) => Set(path, new Rule { Executable = true, Error = 5 });

    public void DenyCreateDirectory(string path)
    {
        lock (_gate) _deniedDirectories.Add(Path.GetFullPath(path));
    }

    /// <summary>The process holding the file exits.</summary>
    public void Release(string path)
    {
        lock (_gate) _rules.Remove(Path.GetFullPath(path));
    }

    /// <summary>Paths currently under a rule (a running executable's rule moves with it when renamed).</summary>
    public IReadOnlyList<string> LockedPaths
    {
        get
        {
            lock (_gate) return _rules.Keys.ToList();
        }
    }

    /// <summary>How many operations on the path were refused.</summary>
    public int Refusals(string path)
    {
        lock (_gate) return _refusals.GetValueOrDefault(Path.GetFullPath(path));
    }

    private void Set(string path, Rule rule)
    {
        lock (_gate) _rules[Path.GetFullPath(path)] = rule;
    }

    /// <summary>Throws when an operation of <paramref name="role"/> on <paramref name="path"/> is refused now.</summary>
    private void Check(string path, string operation, bool movingAway)
    {
        var full = Path.GetFullPath(path);
        lock (_gate)
        {
            if (!_rules.TryGetValue(full, out var rule)) return;
            if (rule.Executable)
            {
                if (movingAway) return;
            }
            else if (!rule.Forever)
            {
                if (rule.Remaining <= 0)
                {
                    _rules.Remove(full);
                    return;
                }

                rule.Remaining--;
            }

            _refusals[full] = _refusals.GetValueOrDefault(full) + 1;
            throw NativeErrors.FromWin32(rule.Error, operation, path);
        }
    }

    public override Stream Create(string path)
    {
        Check(path, "create", movingAway: false);
        return Inner.Create(path);
    }

    public override void CreateDirectory(string path)
    {
        lock (_gate)
        {
            if (_deniedDirectories.Contains(Path.GetFullPath(path)))
                throw NativeErrors.FromErrno(13, "create directory", path);
        }

        Inner.CreateDirectory(path);
    }

    public override void Rename(string from, string to)
    {
        Check(to, $"rename over '{to}'", movingAway: false);
        Check(from, $"rename to '{to}'", movingAway: true);
        lock (_gate)
        {
            // Windows refuses to rename a directory while a file below it is open (a running image included).
            var prefix = Path.GetFullPath(from) + Path.DirectorySeparatorChar;
            if (_rules.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal)))
                throw NativeErrors.FromWin32(5, $"rename to '{to}' (a file below it is open)", from);
        }

        Inner.Rename(from, to);
        lock (_gate)
        {
            // The handle holding the file follows it to its new name.
            var full = Path.GetFullPath(from);
            if (_rules.Remove(full, out var rule)) _rules[Path.GetFullPath(to)] = rule;
        }
    }

    public override void DeleteFile(string path)
    {
        Check(path, "delete", movingAway: false);
        Inner.DeleteFile(path);
    }

}
