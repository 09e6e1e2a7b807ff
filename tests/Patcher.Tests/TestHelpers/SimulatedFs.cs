using System.Globalization;
using System.Security.Cryptography;
using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>Thrown by <see cref="SimulatedFileSystem"/> at its crash point and by every call after it: the process is "dead".</summary>
/// <remarks>
/// Deliberately not an <see cref="IOException"/> or <see cref="PatcherException"/>: the engine must not catch it and
/// "handle" a power cut (e.g. by rolling back), because a dead process does nothing after the cut.
/// </remarks>
internal sealed class SimulatedCrashException : Exception
{
    public SimulatedCrashException()
        : base("simulated power loss")
    {
    }

    public SimulatedCrashException(string message)
        : base(message)
    {
    }

    public SimulatedCrashException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>Where the crash lands relative to the chosen mutating call.</summary>
internal enum CrashMoment
{
    /// <summary>The k-th mutating call never happens (state after call k-1 and any journal step after it).</summary>
    Before,
    /// <summary>The k-th mutating call happens, then power is lost before anything else (including a journal step).</summary>
    After,
}

/// <summary>
/// An in-memory POSIX-like file system behind the engine's <see cref="IFileOps"/> seam that knows which of its
/// state is durable, so a power cut can be simulated (the model of SQLite's crash-test VFS, extended to
/// directory entries). docs/recovery.md, "The power-loss model", states the model and its limits.
/// </summary>
/// <remarks>
/// <para>Data: every file inode has live bytes and durable bytes (and a live and durable executable bit). Only
/// <see cref="Sync"/> on a stream of that inode copies live to durable, as fsync does.</para>
/// <para>Names: every directory has live entries and durable entries. Each mutating call appends entry edits
/// (name → inode, or name removed) for the directories it touches; <see cref="SyncDirectory"/> makes that
/// directory's pending edits durable, in order. A call's edits form one unit: a rename of a file removes the
/// source name and adds the destination name; a rename of a directory and an exchange are all-or-nothing.</para>
/// <para>A crash (<see cref="CrashAt"/>) freezes the state; <see cref="AfterPowerLoss"/> then builds what a reboot
/// would find: every pending unit is independently kept or dropped, every pending data change kept, dropped or
/// garbled (per 512-byte sector: old, new or random bytes, length old or new), by a seeded <see cref="Random"/>.</para>
/// <para>Constraints that every real file system with atomic rename gives, and without which the model would
/// be absurd rather than harsh: a renamed object is never lost (its source name only disappears if its
/// destination name exists), a directory never gets two names, and an exchange is never half done. A unit one of
/// whose directories was synced is, for coupled units, durable as a whole.</para>
/// </remarks>
internal sealed class SimulatedFileSystem : IFileOps
{
    /// <summary>The device number every node reports (one volume).</summary>
    public const ulong Device = 0x5150;

    private const int Sector = 512;
    private const long RootId = 1;

    private readonly object _gate = new();
    private readonly Dictionary<long, Node> _nodes = [];
    private readonly List<Edit> _pending = [];
    private readonly Dictionary<long, UnitKind> _units = [];
    private readonly HashSet<long> _partlyDurable = [];
    private readonly List<string> _log = [];
    private long _nextId = RootId + 1;
    private long _nextSeq;
    private long _nextUnit;
    private long _mutations;
    private long _crashAt;
    private CrashMoment _crashMoment;

    public SimulatedFileSystem()
    {
        _nodes[RootId] = Node.Directory(RootId);
    }

    private enum UnitKind
    {
        /// <summary>One edit: create, link, symlink, mkdir, unlink, rmdir.</summary>
        Simple,
        /// <summary>Rename of a file or symlink: the source name may outlive the rename (two names), never the reverse.</summary>
        FileRename,
        /// <summary>Rename of a directory or an exchange: all edits or none.</summary>
        Coupled,
    }

    /// <summary>Whether <see cref="TryExchange"/> succeeds (renameat2 RENAME_EXCHANGE) or reports "unsupported".</summary>
    public bool SupportsExchange { get; init; } = true;

    /// <summary>What <see cref="AvailableFreeSpace"/> reports.</summary>
    public long FreeSpace { get; set; } = 1L << 40;

    /// <summary>True once the crash point was reached: every later call throws <see cref="SimulatedCrashException"/>.</summary>
    public bool Crashed { get; private set; }

    /// <summary>How many mutating calls (the crash points) have been made.</summary>
    public long Mutations
    {
        get
        {
            lock (_gate) return _mutations;
        }
    }

    /// <summary>One line per mutating call, numbered from 1, as the crash points are numbered.</summary>
    public IReadOnlyList<string> OperationLog
    {
        get
        {
            lock (_gate) return _log.ToList();
        }
    }

    /// <summary>
    /// How many directory entry edits and file data changes that a reboot could still lose are pending, counting
    /// only what is reachable from the root (edits inside a removed directory cannot matter).
    /// </summary>
    public (int Entries, int Data) PendingCounts
    {
        get
        {
            lock (_gate)
            {
                var reachable = new HashSet<long>();
                var stack = new Stack<long>([RootId]);
                while (stack.Count > 0)
                {
                    var node = _nodes[stack.Pop()];
                    if (!reachable.Add(node.Id) || node.Kind != EntryKind.Directory) continue;
                    foreach (var id in node.Entries.Values) stack.Push(id);
                }

                return (_pending.Count(e => reachable.Contains(e.Dir)),
                    _nodes.Values.Count(n => reachable.Contains(n.Id) && n.Kind == EntryKind.File && (n.IsDirty || n.Exec != n.DurableExec)));
            }
        }
    }

    /// <summary>Arms the crash: power is lost before or after the <paramref name="k"/>-th mutating call (1-based).</summary>
    public void CrashAt(long k, CrashMoment moment)
    {
        lock (_gate)
        {
            _crashAt = k;
            _crashMoment = moment;
        }
    }

    // ------------------------------------------------------------------ IFileOps: reads

    public EntryInfo Stat(string path)
    {
        lock (_gate)
        {
            ThrowIfCrashed();
            var node = TryResolve(path);
            if (node is null) return default;
            return node.Kind switch
            {
                EntryKind.File => new EntryInfo(EntryKind.File, node.Data.Length, node.Exec, Device, (ulong)node.Id),
                EntryKind.Directory => new EntryInfo(EntryKind.Directory, 0, false, Device, (ulong)node.Id),
                _ => new EntryInfo(node.Kind, 0, false, Device, (ulong)node.Id),
            };
        }
    }

    public IEnumerable<string> ListNames(string directory)
    {
        lock (_gate)
        {
            ThrowIfCrashed();
            var node = TryResolve(directory) ?? throw Errno(2, "list directory", directory);
            if (node.Kind != EntryKind.Directory) throw Errno(20, "list directory", directory);
            return node.Entries.Keys.ToList();
        }
    }

    public Stream OpenRead(string path)
    {
        lock (_gate)
        {
            ThrowIfCrashed();
            var node = TryResolve(path) ?? throw Errno(2, "open for reading", path);
            if (node.Kind != EntryKind.File) throw Errno(21, "open for reading", path);
            return new ReadStream(this, node.Data);
        }
    }

    public long AvailableFreeSpace(string path)
    {
        lock (_gate)
        {
            ThrowIfCrashed();
            return FreeSpace;
        }
    }

    // ------------------------------------------------------------------ IFileOps: mutations

    public Stream Create(string path)
    {
        lock (_gate)
        {
            Mutation("create " + path);
            var (parent, name) = ResolveParent(path, "create");
            if (parent.Entries.TryGetValue(name, out var existingId))
            {
                var existing = _nodes[existingId];
                if (existing.Kind != EntryKind.File) throw Errno(21, "create", path);
                // O_TRUNC keeps the inode: the old bytes stay durable until the next fsync.
                existing.Data = [];
                AfterMutation();
                return new WriteStream(this, existing, path);
            }

            var node = NewNode(EntryKind.File);
            AddUnit(UnitKind.Simple, new EditSpec(parent, name, node.Id));
            AfterMutation();
            return new WriteStream(this, node, path);
        }
    }

    public Stream OpenToContinue(string path, long length)
    {
        lock (_gate)
        {
            Mutation("continue " + path);
            var node = TryResolve(path) ?? throw Errno(2, "open to continue", path);
            if (node.Kind != EntryKind.File) throw Errno(21, "open to continue", path);
            // ftruncate keeps the inode: the cut-off bytes stay durable until the next fsync.
            if (node.Data.Length > length) node.Data = node.Data[..(int)length];
            else if (node.Data.Length < length) node.Data = [.. node.Data, .. new byte[length - node.Data.Length]];
            AfterMutation();
            return new WriteStream(this, node, path);
        }
    }

    public void Sync(Stream stream)
    {
        if (stream is not WriteStream ws || !ReferenceEquals(ws.Owner, this))
            throw new ArgumentException("not a stream of this simulated file system", nameof(stream));
        lock (_gate)
        {
            Mutation("fsync " + ws.Path);
            ws.Node.DurableData = ws.Node.Data;
            ws.Node.DurableExec = ws.Node.Exec;
            AfterMutation();
        }
    }

    public void SyncDirectory(string path)
    {
        lock (_gate)
        {
            Mutation("fsync-dir " + path);
            var dir = TryResolve(path) ?? throw Errno(2, "open directory for fsync", path);
            if (dir.Kind != EntryKind.Directory) throw Errno(20, "open directory for fsync", path);
            for (var i = 0; i < _pending.Count;)
            {
                var e = _pending[i];
                if (e.Dir != dir.Id)
                {
                    i++;
                    continue;
                }

                Apply(dir.DurableEntries, e);
                _partlyDurable.Add(e.Unit);
                _pending.RemoveAt(i);
            }

            AfterMutation();
        }
    }

    public void CreateDirectory(string path)
    {
        lock (_gate)
        {
            Mutation("mkdir " + path);
            // Directory.CreateDirectory semantics: every missing component is created (each its own mkdir).
            var current = _nodes[RootId];
            var parts = Split(path);
            for (var i = 0; i < parts.Count; i++)
            {
                if (current.Entries.TryGetValue(parts[i], out var id))
                {
                    current = _nodes[id];
                    if (current.Kind != EntryKind.Directory) throw Errno(17, "create directory", path);
                    continue;
                }

                var dir = NewNode(EntryKind.Directory);
                AddUnit(UnitKind.Simple, new EditSpec(current, parts[i], dir.Id));
                current = dir;
            }

            AfterMutation();
        }
    }

    public void Rename(string from, string to)
    {
        lock (_gate)
        {
            Mutation($"rename {from} -> {to}");
            var (fromParent, fromName) = ResolveParent(from, "rename");
            if (!fromParent.Entries.TryGetValue(fromName, out var id)) throw Errno(2, $"rename to '{to}'", from);
            var (toParent, toName) = ResolveParent(to, "rename");
            var node = _nodes[id];
            if (toParent.Entries.TryGetValue(toName, out var targetId))
            {
                if (targetId == id)
                {
                    AfterMutation();
                    return;
                }

                var target = _nodes[targetId];
                if (node.Kind == EntryKind.Directory)
                {
                    if (target.Kind != EntryKind.Directory) throw Errno(20, $"rename to '{to}'", from);
                    if (target.Entries.Count > 0) throw Errno(39, $"rename to '{to}'", from);
                }
                else if (target.Kind == EntryKind.Directory)
                {
                    throw Errno(21, $"rename to '{to}'", from);
                }
            }

            if (node.Kind == EntryKind.Directory && IsSameOrAncestor(node, toParent)) throw Errno(22, $"rename to '{to}'", from);
            AddUnit(node.Kind == EntryKind.Directory ? UnitKind.Coupled : UnitKind.FileRename,
                new EditSpec(fromParent, fromName, null), new EditSpec(toParent, toName, id));
            AfterMutation();
        }
    }

    public bool TryExchange(string a, string b)
    {
        lock (_gate)
        {
            Mutation($"exchange {a} <-> {b}");
            if (!SupportsExchange)
            {
                AfterMutation();
                return false;
            }

            var (pa, na) = ResolveParent(a, "exchange");
            var (pb, nb) = ResolveParent(b, "exchange");
            if (!pa.Entries.TryGetValue(na, out var ida) || !pb.Entries.TryGetValue(nb, out var idb)) throw Errno(2, $"exchange with '{b}'", a);
            if (IsSameOrAncestor(_nodes[ida], pb) || IsSameOrAncestor(_nodes[idb], pa)) throw Errno(22, $"exchange with '{b}'", a);
            AddUnit(UnitKind.Coupled, new EditSpec(pa, na, idb), new EditSpec(pb, nb, ida));
            AfterMutation();
            return true;
        }
    }

    public bool TryHardLink(string existing, string newPath)
    {
        lock (_gate)
        {
            Mutation("link " + newPath);
            var source = TryResolve(existing) ?? throw Errno(2, $"hard link to '{newPath}'", existing);
            if (source.Kind == EntryKind.Directory)
            {
                AfterMutation();
                return false; // EPERM: the engine falls back to a copy.
            }

            var (parent, name) = ResolveParent(newPath, "hard link");
            if (parent.Entries.ContainsKey(name)) throw Errno(17, $"hard link to '{newPath}'", existing);
            AddUnit(UnitKind.Simple, new EditSpec(parent, name, source.Id));
            AfterMutation();
            return true;
        }
    }

    public void DeleteFile(string path)
    {
        lock (_gate)
        {
            Mutation("unlink " + path);
            var (parent, name) = ResolveParent(path, "delete");
            // File.Delete semantics: a missing file is not an error.
            if (parent.Entries.TryGetValue(name, out var id))
            {
                if (_nodes[id].Kind == EntryKind.Directory) throw Errno(21, "delete", path);
                AddUnit(UnitKind.Simple, new EditSpec(parent, name, null));
            }

            AfterMutation();
        }
    }

    public void DeleteDirectory(string path)
    {
        lock (_gate)
        {
            Mutation("rmdir " + path);
            var parentNode = TryResolve(ParentPath(path));
            // FileOps.DeleteDirectory ignores a missing directory.
            if (parentNode is { Kind: EntryKind.Directory } && parentNode.Entries.TryGetValue(Name(path), out var id))
            {
                var node = _nodes[id];
                if (node.Kind != EntryKind.Directory) throw Errno(20, "remove directory", path);
                if (node.Entries.Count > 0) throw Errno(39, "remove directory", path);
                AddUnit(UnitKind.Simple, new EditSpec(parentNode, Name(path), null));
            }

            AfterMutation();
        }
    }

    public void SetExecutable(string path, bool executable)
    {
        lock (_gate)
        {
            Mutation("chmod " + path);
            var node = TryResolve(path) ?? throw Errno(2, "chmod", path);
            if (node.Kind != EntryKind.File) throw Errno(1, "chmod", path);
            // An inode change: durable only through a later fsync of this inode.
            node.Exec = executable;
            AfterMutation();
        }
    }

    public void CopySymlink(string from, string to)
    {
        lock (_gate)
        {
            Mutation("symlink " + to);
            var source = TryResolve(from) ?? throw Errno(2, "copy symlink", from);
            if (source.Kind != EntryKind.Symlink) throw Errno(22, "copy symlink", from);
            var (parent, name) = ResolveParent(to, "copy symlink");
            if (parent.Entries.ContainsKey(name)) throw Errno(17, "copy symlink", to);
            var link = NewNode(EntryKind.Symlink);
            link.Target = source.Target;
            AddUnit(UnitKind.Simple, new EditSpec(parent, name, link.Id));
            AfterMutation();
        }
    }

    // ------------------------------------------------------------------ power loss

    /// <summary>
    /// What a reboot after the power cut finds: a new, fully durable file system built from this one's durable
    /// state plus a random choice, per pending item, to keep, drop or (file data) garble it. Inode numbers are
    /// kept, as on a real disk, so identities recorded in the journal stay meaningful.
    /// </summary>
    public SimulatedFileSystem AfterPowerLoss(Random random, ICollection<string>? choices = null)
    {
        lock (_gate)
        {
            var selected = new HashSet<long>();
            foreach (var unit in _pending.GroupBy(e => e.Unit).OrderBy(g => g.Min(e => e.Seq)))
            {
                var edits = unit.ToList();
                var partly = _partlyDurable.Contains(unit.Key);
                string verdict;
                switch (_units[unit.Key])
                {
                    case UnitKind.Simple:
                    {
                        var keep = random.Next(2) == 0;
                        if (keep) selected.Add(edits[0].Seq);
                        verdict = keep ? "kept" : "dropped";
                        break;
                    }

                    case UnitKind.Coupled:
                    {
                        // Never half an exchange, never a directory with two names or none.
                        var keep = partly || random.Next(2) == 0;
                        if (keep) selected.UnionWith(edits.Select(e => e.Seq));
                        verdict = partly ? "forced (a side was synced)" : keep ? "kept" : "dropped";
                        break;
                    }

                    default:
                    {
                        var add = edits.SingleOrDefault(e => e.Target is not null);
                        var remove = edits.SingleOrDefault(e => e.Target is null);
                        if (add is not null && remove is not null)
                        {
                            // Not renamed, renamed, or (harsh) the new name durable while the old one survives too.
                            var r = random.Next(5);
                            if (r >= 2) selected.Add(add.Seq);
                            if (r is 2 or 3) selected.Add(remove.Seq);
                            verdict = r < 2 ? "dropped" : r < 4 ? "kept" : "new name kept, old name survives";
                        }
                        else if (add is not null)
                        {
                            // The old name's removal is durable, so the new name must be: a rename never loses the object.
                            selected.Add(add.Seq);
                            verdict = "forced (source was synced)";
                        }
                        else
                        {
                            var keep = random.Next(2) == 0;
                            if (keep) selected.Add(remove!.Seq);
                            verdict = keep ? "kept" : "old name survives";
                        }

                        break;
                    }
                }

                choices?.Add($"{verdict}: {edits[0].Label}");
            }

            var image = new SimulatedFileSystem { SupportsExchange = SupportsExchange, FreeSpace = FreeSpace };
            image._nodes.Clear();
            image._nextId = _nextId;
            foreach (var node in _nodes.Values.OrderBy(n => n.Id))
            {
                var copy = new Node(node.Id, node.Kind) { Target = node.Target };
                if (node.Kind == EntryKind.Directory)
                {
                    foreach (var (name, id) in node.DurableEntries) copy.Entries[name] = id;
                    foreach (var e in _pending.Where(e => e.Dir == node.Id && selected.Contains(e.Seq)).OrderBy(e => e.Seq))
                        Apply(copy.Entries, e);
                    foreach (var (name, id) in copy.Entries) copy.DurableEntries[name] = id;
                }
                else if (node.Kind == EntryKind.File)
                {
                    var data = node.DurableData;
                    if (node.IsDirty)
                    {
                        switch (random.Next(3))
                        {
                            case 0:
                                data = node.Data;
                                choices?.Add($"data kept: inode {node.Id}");
                                break;
                            case 1:
                                choices?.Add($"data dropped: inode {node.Id}");
                                break;
                            default:
                                data = Garble(node.DurableData, node.Data, random);
                                choices?.Add($"data garbled: inode {node.Id}");
                                break;
                        }
                    }

                    var exec = node.Exec == node.DurableExec || random.Next(2) == 0 ? node.DurableExec : node.Exec;
                    if (node.Exec != node.DurableExec) choices?.Add($"mode {(exec == node.Exec ? "kept" : "dropped")}: inode {node.Id}");
                    copy.Data = copy.DurableData = data;
                    copy.Exec = copy.DurableExec = exec;
                }

                image._nodes[copy.Id] = copy;
            }

            return image;
        }
    }

    /// <summary>
    /// An identical, fully durable copy (for running several experiments from one state). Everything reachable must
    /// be durable; pending edits inside removed directories are unreachable and cannot change the copy.
    /// </summary>
    public SimulatedFileSystem Clone()
    {
        lock (_gate)
        {
            if (PendingCounts != (0, 0))
                throw new InvalidOperationException("only a file system whose reachable state is durable can be cloned exactly");
            return AfterPowerLoss(new Random(0));
        }
    }

    // ------------------------------------------------------------------ test setup and inspection (no crash points)

    /// <summary>Copies a real directory tree into the simulation at <paramref name="simPath"/>, durably.</summary>
    public void ImportTree(string realDir, string simPath)
    {
        lock (_gate)
        {
            var dir = EnsureDirectoryDurably(simPath);
            foreach (var entry in new DirectoryInfo(realDir).EnumerateFileSystemInfos())
            {
                var child = Path.Join(simPath, entry.Name).Replace('\\', '/');
                if (entry.LinkTarget is not null)
                {
                    var link = NewNode(EntryKind.Symlink);
                    link.Target = entry.LinkTarget;
                    dir.Entries[entry.Name] = dir.DurableEntries[entry.Name] = link.Id;
                }
                else if (entry is DirectoryInfo)
                {
                    ImportTree(entry.FullName, child);
                }
                else
                {
                    var exec = !OperatingSystem.IsWindows() && (((FileInfo)entry).UnixFileMode & UnixFileMode.UserExecute) != 0;
                    WriteDurably(child, File.ReadAllBytes(entry.FullName), exec);
                }
            }
        }
    }

    /// <summary>Writes a file durably (data and entry), creating parents: test setup, not a crash point.</summary>
    public void WriteDurably(string simPath, byte[] content, bool executable = false)
    {
        lock (_gate)
        {
            var parent = EnsureDirectoryDurably(ParentPath(simPath));
            var node = NewNode(EntryKind.File);
            node.Data = node.DurableData = content;
            node.Exec = node.DurableExec = executable;
            parent.Entries[Name(simPath)] = parent.DurableEntries[Name(simPath)] = node.Id;
        }
    }

    /// <summary>The content of a file, or null when the path is not a file.</summary>
    public byte[]? ReadAllBytes(string simPath)
    {
        lock (_gate)
        {
            var node = TryResolve(simPath);
            return node is { Kind: EntryKind.File } ? node.Data : null;
        }
    }

    public bool Exists(string simPath)
    {
        lock (_gate) return TryResolve(simPath) is not null;
    }

    /// <summary>Names in a directory, or empty when it does not exist.</summary>
    public IReadOnlyList<string> Names(string simPath)
    {
        lock (_gate)
        {
            var node = TryResolve(simPath);
            return node is { Kind: EntryKind.Directory } ? node.Entries.Keys.ToList() : [];
        }
    }

    /// <summary>
    /// Sorted listing in the format of <see cref="PatchScenario.Listing"/> ("D rel", "F rel size sha256 x|-",
    /// "L rel -> target"), so a simulated tree can be compared with a real one line for line.
    /// </summary>
    public List<string> Listing(string simPath, Func<string, bool>? exclude = null)
    {
        lock (_gate)
        {
            var root = TryResolve(simPath);
            if (root is not { Kind: EntryKind.Directory }) return ["<missing>"];
            var lines = new List<string>();
            void Walk(Node dir, string prefix)
            {
                foreach (var (name, id) in dir.Entries)
                {
                    var rel = prefix + name;
                    var node = _nodes[id];
                    // As PatchScenario.Listing: an excluded directory's line is left out, its children are not.
                    if (node.Kind == EntryKind.Directory) Walk(node, rel + "/");
                    if (exclude?.Invoke(rel) == true) continue;
                    switch (node.Kind)
                    {
                        case EntryKind.Directory:
                            lines.Add("D " + rel);
                            break;
                        case EntryKind.Symlink:
                            lines.Add($"L {rel} -> {node.Target}");
                            break;
                        default:
                            lines.Add(string.Create(CultureInfo.InvariantCulture,
                                $"F {rel} {node.Data.Length} {Convert.ToHexStringLower(SHA256.HashData(node.Data))} {(node.Exec ? "x" : "-")}"));
                            break;
                    }
                }
            }

            Walk(root, "");
            lines.Sort(StringComparer.Ordinal);
            return lines;
        }
    }

    // ------------------------------------------------------------------ internals

    private static byte[] Garble(byte[] durable, byte[] live, Random random)
    {
        // The length the inode reports may be either; each sector holds the old bytes, the new bytes, or junk.
        var length = random.Next(2) == 0 ? durable.Length : live.Length;
        var result = new byte[length];
        for (var start = 0; start < length; start += Sector)
        {
            var n = Math.Min(Sector, length - start);
            switch (random.Next(3))
            {
                case 0:
                    Copy(durable, start, result, n);
                    break;
                case 1:
                    Copy(live, start, result, n);
                    break;
                default:
                    random.NextBytes(result.AsSpan(start, n));
                    break;
            }
        }

        return result;

        static void Copy(byte[] from, int start, byte[] to, int n)
        {
            if (start >= from.Length) return; // beyond the old end: zeros, as a hole reads
            Array.Copy(from, start, to, start, Math.Min(n, from.Length - start));
        }
    }

    private static void Apply(SortedDictionary<string, long> entries, Edit e)
    {
        if (e.Target is { } id) entries[e.Name] = id;
        else entries.Remove(e.Name);
    }

    private void AddUnit(UnitKind kind, params EditSpec[] specs)
    {
        var unit = ++_nextUnit;
        _units[unit] = kind;
        var label = _log.Count > 0 ? _log[^1] : "";
        foreach (var s in specs)
        {
            var e = new Edit(++_nextSeq, unit, s.Dir.Id, s.Name, s.Target, label);
            Apply(s.Dir.Entries, e);
            _pending.Add(e);
        }
    }

    private void Mutation(string label)
    {
        ThrowIfCrashed();
        _mutations++;
        _log.Add(string.Create(CultureInfo.InvariantCulture, $"{_mutations} {label}"));
        if (_mutations == _crashAt && _crashMoment == CrashMoment.Before)
        {
            Crashed = true;
            throw new SimulatedCrashException($"simulated power loss before mutating call {_mutations} ({label})");
        }
    }

    /// <summary>Called once a mutating call has taken effect.</summary>
    private void AfterMutation()
    {
        if (_mutations == _crashAt && _crashMoment == CrashMoment.After)
        {
            Crashed = true;
            throw new SimulatedCrashException($"simulated power loss after mutating call {_mutations}");
        }
    }

    private void ThrowIfCrashed()
    {
        if (Crashed) throw new SimulatedCrashException("the simulated machine lost power; nothing runs after the crash point");
    }

    private Node NewNode(EntryKind kind)
    {
        var node = kind == EntryKind.Directory ? Node.Directory(_nextId++) : new Node(_nextId++, kind);
        _nodes[node.Id] = node;
        return node;
    }

    private Node EnsureDirectoryDurably(string simPath)
    {
        var current = _nodes[RootId];
        foreach (var part in Split(simPath))
        {
            if (!current.Entries.TryGetValue(part, out var id))
            {
                var dir = NewNode(EntryKind.Directory);
                current.Entries[part] = current.DurableEntries[part] = dir.Id;
                id = dir.Id;
            }

            current = _nodes[id];
            if (current.Kind != EntryKind.Directory) throw new InvalidOperationException($"'{simPath}' crosses a non-directory");
        }

        return current;
    }

    private bool IsSameOrAncestor(Node candidate, Node dir)
    {
        // Walks down from the candidate looking for dir: small trees, so a search is fine.
        if (candidate.Id == dir.Id) return true;
        return candidate.Kind == EntryKind.Directory && candidate.Entries.Values.Any(id => IsSameOrAncestor(_nodes[id], dir));
    }

    private Node? TryResolve(string path)
    {
        var current = _nodes[RootId];
        foreach (var part in Split(path))
        {
            if (current.Kind != EntryKind.Directory || !current.Entries.TryGetValue(part, out var id)) return null;
            current = _nodes[id];
        }

        return current;
    }

    private (Node Parent, string Name) ResolveParent(string path, string operation)
    {
        var parent = TryResolve(ParentPath(path));
        if (parent is null) throw Errno(2, operation, path);
        if (parent.Kind != EntryKind.Directory) throw Errno(20, operation, path);
        return (parent, Name(path));
    }

    private static List<string> Split(string path)
    {
        if (path.Length == 0 || (path[0] != '/' && path[0] != '\\'))
            throw new ArgumentException($"simulated paths are absolute ('/sim/...'): '{path}'", nameof(path));
        var parts = path.Split('/', '\\').Where(p => p.Length > 0 && p != ".").ToList();
        if (parts.Contains("..")) throw new ArgumentException($"'..' is not supported in simulated paths: '{path}'", nameof(path));
        return parts;
    }

    private static string ParentPath(string path)
    {
        var parts = Split(path);
        if (parts.Count == 0) throw new ArgumentException("the root has no parent", nameof(path));
        return "/" + string.Join('/', parts.Take(parts.Count - 1));
    }

    private static string Name(string path) => Split(path)[^1];

    private static PatcherException Errno(int errno, string operation, string path) => NativeErrors.FromErrno(errno, operation, path);

    private readonly record struct EditSpec(Node Dir, string Name, long? Target);

    /// <summary>One directory entry change: <see cref="Name"/> in directory <see cref="Dir"/> now names <see cref="Target"/> (null: removed).</summary>
    private sealed record Edit(long Seq, long Unit, long Dir, string Name, long? Target, string Label);

    private sealed class Node(long id, EntryKind kind)
    {
        public long Id { get; } = id;
        public EntryKind Kind { get; } = kind;

        // Files. Arrays are never mutated in place: a write replaces Data, so Data == DurableData means clean.
        public byte[] Data { get; set; } = [];
        public byte[] DurableData { get; set; } = [];
        public bool Exec { get; set; }
        public bool DurableExec { get; set; }
        public bool IsDirty => !ReferenceEquals(Data, DurableData);

        // Directories.
        public SortedDictionary<string, long> Entries { get; } = new(StringComparer.Ordinal);
        public SortedDictionary<string, long> DurableEntries { get; } = new(StringComparer.Ordinal);

        // Symlinks: the target is written with the inode and is durable with its entry.
        public string? Target { get; set; }

        public static Node Directory(long id) => new(id, EntryKind.Directory);
    }

    private sealed class ReadStream(SimulatedFileSystem owner, byte[] data) : MemoryStream(data, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            lock (owner._gate) owner.ThrowIfCrashed();
            return base.Read(buffer, offset, count);
        }

        public override int Read(Span<byte> buffer)
        {
            lock (owner._gate) owner.ThrowIfCrashed();
            return base.Read(buffer);
        }
    }

    /// <summary>Appends to the inode's live bytes; nothing here is durable until <see cref="Sync"/>.</summary>
    private sealed class WriteStream(SimulatedFileSystem owner, Node node, string path) : Stream
    {
        public SimulatedFileSystem Owner => owner;
        public Node Node => node;
        public string Path => path;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => node.Data.Length;

        public override long Position
        {
            get => node.Data.Length;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (owner._gate)
            {
                owner.ThrowIfCrashed();
                var data = new byte[node.Data.Length + buffer.Length];
                node.Data.CopyTo(data, 0);
                buffer.CopyTo(data.AsSpan(node.Data.Length));
                node.Data = data;
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
