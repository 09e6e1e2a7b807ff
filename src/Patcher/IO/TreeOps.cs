using Patching.Manifests;

namespace Patching.IO;

/// <summary>An entry found in an install directory (never following symlinks).</summary>
internal readonly record struct TreeEntry(string Path, EntryInfo Info);

/// <summary>Tree walks and recursive removal expressed through the file-operations seam.</summary>
internal static class TreeOps
{
    /// <summary>
    /// Lists every entry below <paramref name="root"/>, parents before children. Symlinks are reported, not
    /// followed, so nothing outside the root is ever visited.
    /// </summary>
    public static List<TreeEntry> Walk(IFileOps fs, string root, Func<string, bool>? exclude = null)
    {
        var result = new List<TreeEntry>();
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            var rel = pending.Pop();
            var names = fs.ListNames(rel.Length == 0 ? root : PathRules.Join(root, rel)).ToList();
            names.Sort(StringComparer.Ordinal);
            foreach (var name in names)
            {
                var childRel = rel.Length == 0 ? name : rel + "/" + name;
                if (exclude?.Invoke(childRel) == true) continue;
                var info = fs.Stat(PathRules.Join(root, childRel));
                result.Add(new TreeEntry(childRel, info));
                if (info.Kind == EntryKind.Directory) pending.Push(childRel);
            }
        }

        return result;
    }

    /// <summary>Removes a tree bottom-up. Symlinks are unlinked, never followed. Idempotent.</summary>
    public static void DeleteTree(IFileOps fs, string root)
    {
        var info = fs.Stat(root);
        if (info.Kind == EntryKind.Missing) return;
        if (info.Kind != EntryKind.Directory)
        {
            fs.DeleteFile(root);
            return;
        }

        var entries = Walk(fs, root);
        for (var i = entries.Count - 1; i >= 0; i--)
        {
            var path = PathRules.Join(root, entries[i].Path);
            if (entries[i].Info.Kind == EntryKind.Directory) fs.DeleteDirectory(path);
            else fs.DeleteFile(path);
        }

        fs.DeleteDirectory(root);
        var parent = Path.GetDirectoryName(root);
        if (parent is not null) fs.SyncDirectory(parent);
    }

    /// <summary>Creates a file durably: data fsynced, then the directory entry fsynced.</summary>
    public static void WriteDurably(IFileOps fs, string path, ReadOnlySpan<byte> content)
    {
        using (var s = fs.Create(path))
        {
            try
            {
                s.Write(content);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A stream write reports ENOSPC/EIO as a bare IOException; callers (and launchers) expect the seam's
                // PatcherException with a stable code, e.g. DiskFull while writing the pending marker.
                throw NativeErrors.FromException(ex, "write", path);
            }

            fs.Sync(s);
        }

        fs.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>
    /// Copies a file's bytes and last write time to a new file and fsyncs it (the caller syncs the directory).
    /// The time matters: the post-commit sweep compares it to tell which copy of a user's file is newer.
    /// </summary>
    public static void CopyDurably(IFileOps fs, string from, string to)
    {
        using var input = fs.OpenRead(from);
        using var output = fs.Create(to);
        input.CopyTo(output, ContentHash.BufferSize);
        output.Flush();
        if (fs.LastWriteUtc(from) is { } written) fs.SetLastWriteUtc(to, written);
        fs.Sync(output);
    }
}
