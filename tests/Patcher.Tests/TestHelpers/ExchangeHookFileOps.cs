using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system, with callbacks just before and just after a directory exchange: what a running game
/// could do to the install in those windows (save again, replace a file).
/// </summary>
internal sealed class ExchangeHookFileOps(IFileOps inner, Action before, Action after) : IFileOps
{
    public EntryInfo Stat(string path) => inner.Stat(path);
    public IEnumerable<string> ListNames(string directory) => inner.ListNames(directory);
    public Stream OpenRead(string path) => inner.OpenRead(path);
    public Stream Create(string path) => inner.Create(path);
    public void Sync(Stream stream) => inner.Sync(stream);
    public void SyncDirectory(string path) => inner.SyncDirectory(path);
    public void CreateDirectory(string path) => inner.CreateDirectory(path);
    public void Rename(string from, string to) => inner.Rename(from, to);
    public bool TryHardLink(string existing, string newPath) => inner.TryHardLink(existing, newPath);
    public void DeleteFile(string path) => inner.DeleteFile(path);
    public void DeleteDirectory(string path) => inner.DeleteDirectory(path);
    public void SetExecutable(string path, bool executable) => inner.SetExecutable(path, executable);
    public void CopySymlink(string from, string to) => inner.CopySymlink(from, to);
    public long AvailableFreeSpace(string path) => inner.AvailableFreeSpace(path);
    public bool IsMountPoint(string directory) => inner.IsMountPoint(directory);
    public void CopyMode(string from, string to) => inner.CopyMode(from, to);
    public DateTime? LastWriteUtc(string path) => inner.LastWriteUtc(path);
    public void SetLastWriteUtc(string path, DateTime value) => inner.SetLastWriteUtc(path, value);

    public bool TryExchange(string a, string b)
    {
        before();
        var done = inner.TryExchange(a, b);
        if (done) after();
        return done;
    }
}
