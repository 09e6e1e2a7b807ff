using Microsoft.Win32.SafeHandles;
using System.Globalization;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>The mutating calls of <see cref="IFileOps"/>, plus writes through a created stream.</summary>
internal enum FileOpKind
{
    Create,
    Write,
    Sync,
    SyncDirectory,
    CreateDirectory,
    Rename,
    Exchange,
    HardLink,
    DeleteFile,
    DeleteDirectory,
    SetExecutable,
    CopySymlink,
}

/// <summary>
/// Decorates a file-operations seam so that one chosen call fails the way the OS would make it fail: the k-th
/// mutating call of any kind (numbered as the crash harness numbers its points), or the k-th call of one kind.
/// Writes fail as .NET reports them (an <see cref="IOException"/> carrying the errno), every other call as the
/// real seam does (a <see cref="PatcherException"/> from <see cref="NativeErrors.FromErrno"/>). Only one fault fires.
/// </summary>
internal sealed class FaultyFileOps : FileOpsDecorator
{
    private readonly FileOpKind? _kind;
    private readonly int _at;
    private readonly int _errno;
    private readonly object _gate = new();
    private readonly List<string> _calls = [];
    private readonly Dictionary<FileOpKind, int> _perKind = [];
    private int _count;

    private FaultyFileOps(IFileOps inner, FileOpKind? kind, int at, int errno)
        : base(inner)
    {
        _kind = kind;
        _at = at;
        _errno = errno;
    }

    public const int EIO = 5;
    public const int EACCES = 13;
    public const int ENOSPC = 28;

    /// <summary>Fails the <paramref name="k"/>-th mutating call (1-based; writes not counted) with <paramref name="errno"/>.</summary>
    public static FaultyFileOps AtCall(IFileOps inner, int k, int errno) => new(inner, null, k, errno);

    /// <summary>Fails the <paramref name="k"/>-th call of <paramref name="kind"/> (1-based) with <paramref name="errno"/>.</summary>
    public static FaultyFileOps AtKind(IFileOps inner, FileOpKind kind, int k, int errno) => new(inner, kind, k, errno);

    /// <summary>A decorator that never fails: counts and logs the calls of a dry run.</summary>
    public static FaultyFileOps Recording(IFileOps inner) => new(inner, null, 0, 0);

    /// <summary>The fault that fired, if any.</summary>
    public string? Fired { get; private set; }

    /// <summary>"N kind path" for every mutating call so far (writes excluded).</summary>
    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate) return _calls.ToList();
        }
    }

    /// <summary>How many calls of each kind were made so far (writes included).</summary>
    public int CountOf(FileOpKind kind)
    {
        lock (_gate) return _perKind.GetValueOrDefault(kind);
    }

    public override Stream Create(string path)
    {
        Before(FileOpKind.Create, "create", path);
        return new FaultyStream(this, Inner.Create(path), path);
    }

    public override Stream OpenToContinue(string path, long length)
    {
        Before(FileOpKind.Create, "open to continue", path);
        return new FaultyStream(this, Inner.OpenToContinue(path, length), path);
    }

    public override void Sync(Stream stream)
    {
        var faulty = (FaultyStream)stream;
        Before(FileOpKind.Sync, "fsync", faulty.Path);
        Inner.Sync(faulty.Inner);
    }

    public override void SyncDirectory(string path)
    {
        Before(FileOpKind.SyncDirectory, "fsync directory", path);
        Inner.SyncDirectory(path);
    }

    public override void CreateDirectory(string path)
    {
        Before(FileOpKind.CreateDirectory, "create directory", path);
        Inner.CreateDirectory(path);
    }

    public override void Rename(string from, string to)
    {
        Before(FileOpKind.Rename, $"rename to '{to}'", from);
        Inner.Rename(from, to);
    }

    public override bool TryExchange(string a, string b)
    {
        Before(FileOpKind.Exchange, $"exchange with '{b}'", a);
        return Inner.TryExchange(a, b);
    }

    public override bool TryHardLink(string existing, string newPath)
    {
        Before(FileOpKind.HardLink, $"hard link to '{newPath}'", existing);
        return Inner.TryHardLink(existing, newPath);
    }

    public override bool TryLinkWalkedFile(WalkedTree tree, string relative, EntryInfo walked, string newPath)
    {
        Before(FileOpKind.HardLink, $"hard link to '{newPath}'", RelativePath.Join(tree.Root, relative));
        return Inner.TryLinkWalkedFile(tree, relative, walked, newPath);
    }

    public override bool TryLinkOpenFile(SafeFileHandle file, string path, string newPath, bool executable)
    {
        Before(FileOpKind.HardLink, $"hard link to '{newPath}'", path);
        return Inner.TryLinkOpenFile(file, path, newPath, executable);
    }

    public override void DeleteFile(string path)
    {
        Before(FileOpKind.DeleteFile, "delete", path);
        Inner.DeleteFile(path);
    }

    public override void DeleteDirectory(string path)
    {
        Before(FileOpKind.DeleteDirectory, "remove directory", path);
        Inner.DeleteDirectory(path);
    }

    public override void SetExecutable(string path, bool executable)
    {
        Before(FileOpKind.SetExecutable, "chmod", path);
        Inner.SetExecutable(path, executable);
    }

    public override void CopySymlink(string from, string to)
    {
        Before(FileOpKind.CopySymlink, "copy symlink", from);
        Inner.CopySymlink(from, to);
    }

    private void Before(FileOpKind kind, string operation, string path)
    {
        lock (_gate)
        {
            var n = _perKind[kind] = _perKind.GetValueOrDefault(kind) + 1;
            if (kind != FileOpKind.Write)
            {
                _count++;
                _calls.Add(string.Create(CultureInfo.InvariantCulture, $"{_count} {kind} {path}"));
            }

            var hit = _kind is null ? kind != FileOpKind.Write && _count == _at : kind == _kind && n == _at;
            if (!hit || Fired is not null) return;
            Fired = string.Create(CultureInfo.InvariantCulture, $"{kind} #{n} ({operation} '{path}'): errno {_errno}");
        }

        if (kind == FileOpKind.Write)
        {
            // What FileStream.Write throws on Unix for ENOSPC/EIO: an IOException whose HResult is the raw errno.
            throw new IOException($"{(_errno == ENOSPC ? "No space left on device" : "Input/output error")} : '{path}'", _errno);
        }

        throw NativeErrors.FromErrno(_errno, operation, path);
    }

    /// <summary>Passes writes through, failing the chosen one; <see cref="Sync"/> unwraps it for the inner seam.</summary>
    private sealed class FaultyStream(FaultyFileOps owner, Stream inner, string path) : Stream
    {
        public Stream Inner => inner;
        public string Path => path;

        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => inner.Position = value;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            owner.Before(FileOpKind.Write, "write", path);
            inner.Write(buffer);
        }

        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => inner.SetLength(value);

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
