namespace Patching.Commit;

/// <summary>
/// Layer 0 of the layered replace, offered by the real file system only: a rename with POSIX semantics on
/// Windows 10 1607+ volumes that support it. Decorators (crash injection, lock simulation) do not offer it,
/// so through them the layered commit starts at layer 1.
/// </summary>
internal interface IPosixRenameFileOps
{
    /// <summary>
    /// Flushes <paramref name="from"/> and renames it over <paramref name="to"/> with POSIX semantics, so a target
    /// held open with delete sharing is replaced. Returns false where the system or volume cannot (the caller
    /// falls back to layer 1); throws a mapped <see cref="PatcherException"/> when it could but failed.
    /// </summary>
    bool TryPosixRename(string from, string to);
}
