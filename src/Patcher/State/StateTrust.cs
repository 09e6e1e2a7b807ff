using Patching.IO;

namespace Patching.State;

/// <summary>
/// The state directory is as trusted as a pinned key: recovery finishes what its journal and staged trees describe,
/// and the trash deletes what is in it. So, as ssh does with <c>~/.ssh</c>, it is refused when another user could
/// have prepared it: the directory, and every entry directly in it (journal, lock, marker, staging, trash, kept
/// previous version), must be owned by this process's user or by root and must not be a symlink; the directory and the
/// journal and lock files must not be writable by group or others. Entries deeper down could only have been made by
/// someone who could write these. Checked wherever the state is about to be used (Linux; where owners cannot be read,
/// nothing is checked).
/// </summary>
internal static class StateTrust
{
    /// <summary>Throws <see cref="PatchErrorCode.StateDirectoryUntrusted"/> unless the state of <paramref name="layout"/> is missing or trusted.</summary>
    public static void Require(IFileOps fs, StateLayout layout)
    {
        if (fs.EffectiveUser is not { } me) return;
        if (Check(fs, layout.StateDir, me, strict: true))
        {
            foreach (var name in fs.ListNames(layout.StateDir))
                Check(fs, Path.Join(layout.StateDir, name), me, strict: IsJournalOrLock(name));
        }

        if (layout.JournalDir == layout.StateDir) return;
        Check(fs, layout.JournalPath, me, strict: true);
        Check(fs, layout.LockPath, me, strict: true);
    }

    /// <summary>
    /// Takes group and other write permission off a state directory this process just created (a umask of 002 gives it
    /// them), so that the next run trusts it.
    /// </summary>
    public static void Restrict(IFileOps fs, string stateDir) => fs.RemoveWriteByOthers(stateDir);

    /// <summary>The journal (with SQLite's side files) and the lock: what another writer could change in place.</summary>
    private static bool IsJournalOrLock(string name) => name == "lock" || name.StartsWith("journal.db", StringComparison.Ordinal);

    /// <summary>False when <paramref name="path"/> is missing.</summary>
    private static bool Check(IFileOps fs, string path, uint me, bool strict)
    {
        var kind = fs.Stat(path).Kind;
        if (kind == EntryKind.Missing) return false;
        if (kind == EntryKind.Symlink) throw Untrusted(path, "is a symlink");
        if (fs.Owner(path) is not { } owner) return true;
        if (owner.Uid != me && owner.Uid != 0)
            throw Untrusted(path, $"is owned by user {owner.Uid}, not by this process's user ({me}) or root");
        if (strict && owner.WritableByOthers)
            throw Untrusted(path, "is writable by group or others (chmod go-w to trust it)");
        return true;
    }

    private static PatcherException Untrusted(string path, string why) =>
        new(PatchErrorCode.StateDirectoryUntrusted, $"refusing the update state at '{path}': it {why}; whoever controls it could make recovery install their files", path);
}
