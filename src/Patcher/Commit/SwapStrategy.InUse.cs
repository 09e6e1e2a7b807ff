using System.Text;
using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Manifests;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// Old trees a running program still uses. After the exchange a game whose working directory, open files or mappings
/// were in the install keeps them on the old tree and goes on saving there by relative path; deleting that tree would
/// delete saves the game reported as written. Such a tree is kept in <see cref="StateLayout.InUseDir"/> instead of the
/// trash, swept again (what was written there since goes into the install, as the post-commit sweep does) by every later
/// Apply and Recover, and moved to the trash only once no process uses it.
/// </summary>
internal sealed partial class SwapStrategy
{
    /// <summary>Suffix of the file beside a kept tree that lists what the old version owned (one path a line).</summary>
    private const string OwnedSuffix = ".owned";

    /// <summary>
    /// Keeps <paramref name="oldTree"/> as <c>in-use/&lt;tx&gt;</c>. The list of what the old version owned is written
    /// durably first: a tree in <see cref="StateLayout.InUseDir"/> always has it, so a later sweep never mistakes an old
    /// version's file for the player's. A crash in between leaves the tree at its staging path, and Finish runs again.
    /// </summary>
    private void KeepInUse(string txId, string oldTree, IReadOnlySet<string> oldVersionPaths, List<ProgramUse> users)
    {
        var dir = _layout.InUseDir;
        if (_fs.Stat(dir).Kind == EntryKind.Missing)
        {
            _fs.CreateDirectory(dir);
            _fs.SyncDirectory(_layout.StateDir);
        }

        // Paths hold no control characters (the manifest's rules), so a line is a path.
        TreeOps.WriteDurably(_fs, Path.Join(dir, txId + OwnedSuffix), Encoding.UTF8.GetBytes(string.Join('\n', oldVersionPaths.Order(StringComparer.Ordinal))));
        _fs.Rename(oldTree, Path.Join(dir, txId));
        _fs.SyncDirectory(dir);
        _log.LogWarning("The old version's files are still used by {Programs}; kept them in {Kept} instead of deleting them: what is written there is moved into the install by the next Apply or Recover, and they are deleted once no program uses them",
            RunningPrograms.Describe(users), Path.Join(dir, txId));
    }

    /// <summary>
    /// Sweeps every kept in-use tree again into the install (the installed version's paths are the new version's), then
    /// moves each one no process uses any more to the trash (or, when the sweep left an entry it may not move, keeps it as
    /// <see cref="StateLayout.UnsweptDir"/>, never deleted). The caller holds the lock and no transaction is pending; the
    /// caller empties the trash. Renames only, each idempotent: a crash is followed by the same sweep with less to do.
    /// </summary>
    public void SweepTreesInUse()
    {
        var dir = _layout.InUseDir;
        if (_fs.Stat(dir).Kind != EntryKind.Directory || _journal.Installed() is not { } installed) return;
        var ignoreCase = NamesIgnoreCase();
        var newVersionPaths = AsTheVolumeCompares(ApplyPlan.TargetPaths(ManifestCodec.Deserialize(installed.Manifest)), ignoreCase);
        var swap = new SwapCommit(_fs, _layout, _log);
        var names = _fs.ListNames(dir).ToHashSet(StringComparer.Ordinal);
        var released = false;
        foreach (var name in names.Where(n => !n.EndsWith(OwnedSuffix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var tree = Path.Join(dir, name);
            if (_fs.Stat(tree).Kind != EntryKind.Directory) continue;
            var owned = names.Contains(name + OwnedSuffix) ? AsTheVolumeCompares(ReadOwned(tree + OwnedSuffix), ignoreCase) : null;
            // Without its list nothing tells the old version's files from the player's: nothing is moved, and the tree
            // is never deleted.
            var left = owned is null ? ["(the list of the old version's files is missing)"] : swap.SweepUserFiles(name, tree, owned, newVersionPaths);
            if (RunningPrograms.Using(tree) is { Count: > 0 } users)
            {
                _log.LogInformation("The old version's files in {Kept} are still used by {Programs}; kept", tree, RunningPrograms.Describe(users));
                continue;
            }

            if (left.Count > 0)
            {
                _fs.Rename(tree, _layout.UnsweptDir(name));
                _log.LogWarning("{Count} entries of {Kept} could not be moved into the install; kept in {Unswept}", left.Count, tree, _layout.UnsweptDir(name));
            }
            else
            {
                Trash.Move(_fs, _layout, tree, name + "-in-use");
                _log.LogInformation("No program uses the old version's files in {Kept} any more; moved them to the trash", tree);
            }

            released = true;
        }

        // A list whose tree is gone (released above, or a crash after the tree moved) is of no use.
        foreach (var name in names.Where(n => n.EndsWith(OwnedSuffix, StringComparison.Ordinal)))
        {
            if (_fs.Stat(Path.Join(dir, name[..^OwnedSuffix.Length])).Kind != EntryKind.Missing) continue;
            _fs.DeleteFile(Path.Join(dir, name));
            released = true;
        }

        if (!released) return;
        _fs.SyncDirectory(dir);
        if (_fs.Stat(_layout.TrashDir).Kind == EntryKind.Directory) Trash.Sync(_fs, _layout);
        if (!_fs.ListNames(dir).Any()) _fs.DeleteDirectory(dir);
        _fs.SyncDirectory(_layout.StateDir);
    }

    private HashSet<string> ReadOwned(string path)
    {
        using var stream = _fs.OpenRead(path);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
    }
}
