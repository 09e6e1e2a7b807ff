using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// Commit by exchanging the staged shadow tree with the install directory. On Linux this is one
/// <c>renameat2(RENAME_EXCHANGE)</c>: there is no instant at which the install path holds anything but a
/// complete version. Where the file system refuses the exchange, two renames are used; between them the
/// install path is briefly absent, and recovery finishes the second rename from the journal's
/// backup-complete state (the staged tree is complete by then).
/// </summary>
internal sealed class SwapCommit(IFileOps fs, StateLayout layout, ILogger log)
{
    /// <summary>Whether this platform can tell afterwards if the exchange happened (directory identity).</summary>
    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>Performs the switch. Returns once the new tree is at the install path durably.</summary>
    public void Switch(string txId)
    {
        var staging = layout.StagingDir(txId);
        var install = layout.InstallDir;
        var parent = Path.GetDirectoryName(install)!;
        if (fs.TryExchange(staging, install))
        {
            fs.SyncDirectory(parent);
            fs.SyncDirectory(layout.StateDir);
            log.LogInformation("Exchanged {Staging} with {Install} atomically", staging, install);
            return;
        }

        log.LogWarning("The file system cannot exchange directories; switching {Install} with two renames", install);
        var old = layout.OldDir(txId);
        fs.Rename(install, old);
        fs.SyncDirectory(parent);
        fs.SyncDirectory(layout.StateDir);
        CompleteTwoRenameSwitch(txId);
    }

    /// <summary>Second half of the two-rename switch; also what recovery runs when the install path is missing.</summary>
    public void CompleteTwoRenameSwitch(string txId)
    {
        var parent = Path.GetDirectoryName(layout.InstallDir)!;
        fs.Rename(layout.StagingDir(txId), layout.InstallDir);
        fs.SyncDirectory(layout.StateDir);
        fs.SyncDirectory(parent);
    }

    /// <summary>
    /// The old tree after the switch: at the staging path after an exchange, at the old path after two renames.
    /// Null when it is already gone.
    /// </summary>
    public string? OldTree(string txId)
    {
        var staging = layout.StagingDir(txId);
        if (fs.Stat(staging).Kind == EntryKind.Directory) return staging;
        var old = layout.OldDir(txId);
        return fs.Stat(old).Kind == EntryKind.Directory ? old : null;
    }

    /// <summary>
    /// Carries the user's files from the old tree into the new one: anything the old version does not own.
    /// A user file that changed after staging replaces the staged link; one whose path the new version now
    /// uses is moved to the preserved folder, never deleted. Idempotent: a rerun after a crash finds less to do.
    /// An entry that cannot be moved (an immutable file, a directory of another user) is left where it is and returned:
    /// the caller keeps the old tree holding it instead of deleting it, and the update still completes.
    /// </summary>
    /// <returns>The install-relative paths of the entries left in the old tree.</returns>
    public List<string> SweepUserFiles(string txId, string oldTree, IReadOnlySet<string> oldVersionPaths, IReadOnlySet<string> newVersionPaths)
    {
        var left = new List<string>();
        var sweep = new UserFileSweep(fs, layout, log, txId, oldTree, newVersionPaths);
        foreach (var e in TreeOps.Walk(fs, oldTree))
        {
            if (oldVersionPaths.Contains(e.Path)) continue;
            try
            {
                sweep.Move(e);
            }
            // Permission only (EACCES, EPERM: immutable, append-only, another user's directory): it will not change by
            // trying again. Any other failure stops the sweep, and recovery runs it again.
            catch (PatcherException ex) when (ex.Code is PatchErrorCode.AccessDenied)
            {
                left.Add(e.Path);
                log.LogWarning("User entry '{Path}' cannot be moved into the new version ({Reason}); it is kept with the old version's files", e.Path, ex.Message);
            }
        }

        TreeOps.SyncDirectories(fs, sweep.Touched);
        return left;
    }

    /// <summary>One sweep of an old tree: where each user entry goes, and the directories it changed (fsynced at the end).</summary>
    private sealed class UserFileSweep(IFileOps fs, StateLayout layout, ILogger log, string txId, string oldTree, IReadOnlySet<string> newVersionPaths)
    {
        /// <summary>
        /// Below a path the new version made a file (an old directory replaced by a file), nothing can go back. Asked for
        /// every entry of the old tree, so each ancestor is stat'ed once, not once per descendant.
        /// </summary>
        private readonly Dictionary<string, bool> _becameFile = new(StringComparer.Ordinal);

        public HashSet<string> Touched { get; } = new(StringComparer.Ordinal);

        private bool UnderNewFile(string rel)
        {
            for (var a = PathRules.Parent(rel); a.Length > 0; a = PathRules.Parent(a))
            {
                if (!newVersionPaths.Contains(a)) continue;
                if (!_becameFile.TryGetValue(a, out var isFile))
                    _becameFile[a] = isFile = fs.Stat(PathRules.Join(layout.InstallDir, a)).Kind != EntryKind.Directory;
                if (isFile) return true;
            }

            return false;
        }

        public void Move(TreeEntry e)
        {
            var blocked = UnderNewFile(e.Path);
            if (!blocked && e.Info.Kind == EntryKind.Directory && newVersionPaths.Contains(e.Path)) return;
            var from = PathRules.Join(oldTree, e.Path);
            if (blocked || newVersionPaths.Contains(e.Path))
            {
                if (e.Info.Kind == EntryKind.Directory)
                {
                    // Its files follow one by one (the walk lists them); this keeps an empty one too.
                    TreeOps.CreateDirectoriesDurably(fs, PathRules.Join(layout.PreservedDir(txId), e.Path));
                    return;
                }

                var kept = Preserve(e.Path, from);
                log.LogWarning("User file '{Path}' is where the new version has a file; kept it at {Kept}", e.Path, kept);
                return;
            }

            var to = PathRules.Join(layout.InstallDir, e.Path);
            var there = fs.Stat(to);
            if (e.Info.Kind == EntryKind.Directory)
            {
                if (there.Kind == EntryKind.Missing) TreeOps.CreateDirectoriesDurably(fs, to);
                return;
            }

            if (there.Kind == EntryKind.File && e.Info.Kind == EntryKind.File && there.Inode == e.Info.Inode && there.Device == e.Info.Device && there.Inode != 0)
                return; // Still the hard link made while staging.
            if (there.Kind == EntryKind.Symlink && e.Info.Kind == EntryKind.Symlink) return;
            if (there.Kind == EntryKind.File && e.Info.Kind == EntryKind.File &&
                fs.LastWriteUtc(to) is { } installed && fs.LastWriteUtc(from) is { } old && installed > old)
            {
                // Both copies changed since staging and the one in the new tree is newer: the game saved again
                // after the switch. It stays; the older copy is kept aside, not thrown away.
                var kept = Preserve(e.Path, from);
                log.LogWarning("User file '{Path}' changed in both trees; kept the newer one and put the older at {Kept}", e.Path, kept);
                return;
            }

            TreeOps.CreateDirectoriesDurably(fs, Path.GetDirectoryName(to)!);
            fs.Rename(from, to);
            Touched.Add(Path.GetDirectoryName(to)!);
        }

        /// <summary>Moves the old tree's <paramref name="from"/> to the preserved folder; returns where it went.</summary>
        private string Preserve(string rel, string from)
        {
            var keep = PathRules.Join(layout.PreservedDir(txId), rel);
            TreeOps.CreateDirectoriesDurably(fs, Path.GetDirectoryName(keep)!);
            fs.Rename(from, keep);
            Touched.Add(Path.GetDirectoryName(keep)!);
            return keep;
        }
    }
}
