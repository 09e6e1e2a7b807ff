using Patching.IO;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.Tests.TestHelpers;
using Patching.State;
using Patching.Transaction;

namespace Patching.Tests.Transaction;

/// <summary>
/// Blobs are received (read, hashed, written, fsynced) once, before the transaction's first journal row; staging
/// links what was received instead of reading the patch again.
/// </summary>
public sealed class ReceiveTests
{
    private static PatchPackage OpenVerified(PatchScenario s, out IReadOnlyList<string> keyIds)
    {
        var package = PatchPackage.Open(s.PatchDir, ManifestLimits.Default);
        using var policy = TrustPolicy.FromPems([s.PublicKey], 1);
        keyIds = package.VerifySignature(policy, ManifestLimits.Default, DateTimeOffset.UtcNow);
        return package;
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_EveryBlob_IsReadOnce(CommitStrategy strategy)
    {
        if (strategy == CommitStrategy.Swap && !OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame(extraFiles: 60, changeEvery: 3).Install();
        s.BuildPatch();
        var package = OpenVerified(s, out var keyIds);
        Assert.That(package.Manifest.Blobs, Has.Count.GreaterThan(10));

        var result = TransactionEngine.ApplyVerified(new EngineSettings(FileOps.Instance), s.InstallDir, new VerifiedPatch(package, keyIds),
            s.Options with { Strategy = strategy }, null, CancellationToken.None);

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        Assert.That(package.BlobReads, Is.EqualTo(package.Manifest.Blobs.Count), "one read per blob: received once, then linked");
        Assert.That(Directory.Exists(Path.Join(s.ParentDir, ".game.patcher", "incoming")), Is.False);
    }

    [Test]
    public void Apply_ManyBlobs_EachReceivedFileFsyncedThroughItsWriterAfterItsBatchWasWrittenBack()
    {
        // 700 changed files: three batches of received files (BlobReceiver.SyncBatch is 256).
        using var s = new PatchScenario().WithSmallGame(extraFiles: 700, changeEvery: 1).Install();
        s.BuildPatch();
        var incoming = Path.Join(s.ParentDir, ".game.patcher", "incoming");
        var fs = new SyncRecordingFileOps(FileOps.Instance, incoming);

        var result = TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, s.Options, null, CancellationToken.None);

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        var created = fs.Events.Where(e => e.StartsWith("create ", StringComparison.Ordinal)).Select(e => e[7..]).ToList();
        Assert.That(created, Has.Count.GreaterThan(2 * 256));
        // Spread over subdirectories by the hash's first hex digit, so that creates do not queue on one directory's lock.
        Assert.That(fs.Created, Has.All.Matches<string>(p => p == Path.Join(Path.GetFileName(p)[..1], Path.GetFileName(p))));
        Assert.That(fs.Created.Select(p => p[0]).Distinct().Count(), Is.EqualTo(16), "700 random hashes use every first digit");
        Assert.That(fs.Events.Count(e => e == "flush"), Is.EqualTo(3), "one write-back per batch");
        foreach (var name in created)
        {
            var createdAt = fs.Events.IndexOf("create " + name);
            var syncedAt = fs.Events.IndexOf("sync " + name);
            Assert.That(fs.Events.Count(e => e == "sync " + name), Is.EqualTo(1), name);
            Assert.That(fs.Events.FindIndex(createdAt, e => e == "flush"), Is.InRange(createdAt, syncedAt), $"{name}: its batch is written back before its fsync");
        }

        var executable = fs.Events.Where(e => e.StartsWith("chmod ", StringComparison.Ordinal)).Select(e => e[6..]).ToList();
        Assert.That(executable, Is.Not.Empty, "game.exe's new content is received with its executable bit");
        foreach (var name in executable)
            Assert.That(fs.Events.IndexOf("chmod " + name), Is.LessThan(fs.Events.IndexOf("sync " + name)), $"{name}: the mode is set before the fsync");

        // Descriptors held open are bounded: two batches (writers wait while the older one is fsynced).
        var openNow = 0;
        var mostOpen = 0;
        foreach (var e in fs.Events)
        {
            if (e.StartsWith("create ", StringComparison.Ordinal)) mostOpen = Math.Max(mostOpen, ++openNow);
            else if (e.StartsWith("sync ", StringComparison.Ordinal)) openNow--;
        }

        Assert.That(mostOpen, Is.LessThanOrEqualTo(2 * 256));
    }

    [Test]
    public void Apply_ManyBlobs_BlobsReportedDoneOnlyOnceTheirFilesWereFsynced()
    {
        using var s = new PatchScenario().WithSmallGame(extraFiles: 300, changeEvery: 1).Install();
        s.BuildPatch();
        var fs = new SyncRecordingFileOps(FileOps.Instance, Path.Join(s.ParentDir, ".game.patcher", "incoming"));
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == PatchPhase.Staging) lock (fs.Events) fs.Events.Add($"done {p.FilesDone}");
        });

        TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, s.Options, progress, CancellationToken.None);

        // Until the last received file is fsynced, the count of blobs done never runs ahead of the fsyncs (every blob here
        // is written: none is only hashed or linked). Staging's own counts come after.
        var lastSync = fs.Events.FindLastIndex(e => e.StartsWith("sync ", StringComparison.Ordinal));
        Assert.That(fs.Events.Count(e => e.StartsWith("sync ", StringComparison.Ordinal)), Is.GreaterThan(256), "two batches of received files");
        var synced = 0;
        var ahead = new List<string>();
        foreach (var e in fs.Events.Take(lastSync + 1))
        {
            if (e.StartsWith("sync ", StringComparison.Ordinal)) synced++;
            else if (e.StartsWith("done ", StringComparison.Ordinal) && int.Parse(e[5..], System.Globalization.CultureInfo.InvariantCulture) > synced) ahead.Add($"{e} after {synced} fsyncs");
        }

        Assert.That(ahead, Is.Empty);
        Assert.That(fs.Events.Skip(lastSync).Any(e => e == $"done {fs.Events.Count(x => x.StartsWith("sync ", StringComparison.Ordinal))}"), Is.True,
            "every received blob is reported done once the last fsync returned");
    }

    /// <summary>Records, in order, files created anywhere below one directory, their fsyncs (by the stream that wrote them) and file-system flushes.</summary>
    private sealed class SyncRecordingFileOps(IFileOps inner, string directory) : FileOpsDecorator(inner)
    {
        private bool Under(string path) => path.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal);

        /// <summary>Where each recorded file was created, relative to the directory.</summary>
        public List<string> Created { get; } = [];

        private readonly Dictionary<Stream, string> _names = [];
        public List<string> Events { get; } = [];

        public override Stream Create(string path)
        {
            var stream = Inner.Create(path);
            if (!Under(path)) return stream;
            lock (Events)
            {
                _names[stream] = Path.GetFileName(path);
                Events.Add("create " + Path.GetFileName(path));
                Created.Add(Path.GetRelativePath(directory, path));
            }

            return stream;
        }

        public override void SetExecutable(string path, bool executable)
        {
            Inner.SetExecutable(path, executable);
            if (!Under(path)) return;
            lock (Events) Events.Add("chmod " + Path.GetFileName(path));
        }

        public override void Sync(Stream stream)
        {
            Inner.Sync(stream);
            lock (Events)
            {
                if (_names.TryGetValue(stream, out var name)) Events.Add("sync " + name);
            }
        }

        public override bool FlushFileSystem(string path)
        {
            lock (Events) Events.Add("flush");
            return Inner.FlushFileSystem(path);
        }
    }

    [TestCase(CommitStrategy.Swap)]
    [TestCase(CommitStrategy.Layered)]
    public void Apply_FilesWithTheSameContent_EachGetsItsOwnInode(CommitStrategy strategy)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("inode identity is read through statx (Linux)");
        using var s = new PatchScenario().WithSmallGame().Install();
        // Two new files from one blob, and a new copy of a file the install keeps.
        PatchScenario.Write(s.NewTree, "dup/a.bin", PatchScenario.Bytes("duplicate", 5000));
        PatchScenario.Write(s.NewTree, "dup/b.bin", PatchScenario.Bytes("duplicate", 5000));
        PatchScenario.Write(s.NewTree, "data/level1-copy.pak", PatchScenario.Bytes("level1", 40_000));
        s.BuildPatch();

        Patcher.Apply(s.InstallDir, s.PatchDir, s.Options with { Strategy = strategy });

        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
        string P(string rel) => Path.Join(s.InstallDir, rel);
        Assert.That(ApplyTests.Inode(P("dup/a.bin")), Is.Not.EqualTo(ApplyTests.Inode(P("dup/b.bin"))), "a game rewriting one must not change the other");
        Assert.That(ApplyTests.Inode(P("data/level1-copy.pak")), Is.Not.EqualTo(ApplyTests.Inode(P("data/level1.pak"))));
        File.WriteAllText(P("dup/a.bin"), "rewritten in place");
        Assert.That(File.ReadAllBytes(P("dup/b.bin")), Is.EqualTo(PatchScenario.Bytes("duplicate", 5000)));
    }

    [Test]
    public void Apply_CorruptBlobWhileAnotherApplierCreatedTheStateDirectory_TheirJournalKept()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the swap strategy needs Linux");
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var full = Path.Join(s.Root, "full-v1");
        s.BuildFull(s.OldTree, full, "1.0.0");
        CorruptLargestBlob(s);
        // Another launcher installs 1.0.0 through Patcher between this apply's check and its mkdir.
        var racer = new RacingFileOps(FileOps.Instance, Path.Join(s.ParentDir, ".game.patcher"),
            () => Patcher.Apply(s.InstallDir, full, s.Options with { Strategy = CommitStrategy.Swap }));

        var ex = Assert.Throws<PatcherException>(() => TransactionEngine.Apply(new EngineSettings(racer), s.InstallDir, s.PatchDir,
            s.Options with { Strategy = CommitStrategy.Swap }, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(racer.Raced, Is.True);
        Assert.That(Patcher.Status(s.InstallDir).InstalledVersion, Is.EqualTo("1.0.0"), "the other applier's journal survives the refusal");
    }

    [Test]
    public void Apply_CorruptBlobOnAnUntrackedInstall_StateDirectoryCreatedForItIsRemoved()
    {
        using var s = UntrackedInstallWithACorruptBlob();
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before));
        Assert.That(Directory.EnumerateFileSystemEntries(s.ParentDir, ".game.patcher*"), Is.Empty);
    }

    /// <summary>
    /// Windows refuses to rename a directory while a file in it is open, and the refusal happens while this apply still
    /// holds its lock file open inside the state directory it made. Before the fix the directory stayed behind.
    /// </summary>
    [Test]
    public void Apply_CorruptBlobOnAnUntrackedInstallWhereAnOpenFilePinsItsDirectory_StateDirectoryStillRemoved()
    {
        using var s = UntrackedInstallWithACorruptBlob();
        var before = PatchScenario.Listing(s.ParentDir);
        var fs = new OpenLockPinsDirectoryFileOps(FileOps.Instance, Path.Join(s.ParentDir, ".game.patcher"));

        var ex = Assert.Throws<PatcherException>(() => TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, s.Options, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(fs.RefusedRenames, Is.EqualTo(1), "the first rename met the open lock file, as on Windows");
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before));
        Assert.That(Directory.EnumerateFileSystemEntries(s.ParentDir, ".game.patcher*"), Is.Empty);
    }

    /// <summary>
    /// A launcher's own <see cref="PatcherOptions.StateDirectory"/> whose parents do not exist yet (first run): the
    /// apply makes them, and a refused patch removes them again. Before, the parents stayed.
    /// </summary>
    [Test]
    public void Apply_CorruptBlobWithAStateDirectoryWhoseParentsAreMissing_ParentsMadeForItAreRemoved()
    {
        using var s = UntrackedInstallWithACorruptBlob();
        var appData = Path.Join(s.Root, "appdata");
        Directory.CreateDirectory(appData);
        var options = s.Options with { StateDirectory = Path.Join(appData, "launcher", "games", "game") };
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(Directory.EnumerateFileSystemEntries(appData), Is.Empty, "nothing left under the launcher's folder");
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    /// <summary>
    /// The same state directory for a patch that applies: its parents are made, each synced in its own parent after it
    /// was made (the journal is durable only if every name on its path is), and it works as the default one.
    /// </summary>
    [Test]
    public void Apply_StateDirectoryWhoseParentsAreMissing_ParentsMadeDurablyAndTheUpdateApplies()
    {
        using var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        var state = Path.Join(s.Root, "appdata", "launcher", "game");
        var options = s.Options with { StateDirectory = state };
        var fs = new DirectoryEventFileOps(FileOps.Instance);

        var result = TransactionEngine.Apply(new EngineSettings(fs), s.InstallDir, s.PatchDir, options, null, CancellationToken.None);

        foreach (var made in new[] { Path.Join(s.Root, "appdata"), Path.Join(s.Root, "appdata", "launcher"), state })
        {
            var at = fs.Events.IndexOf("mkdir " + made);
            Assert.That(at, Is.GreaterThanOrEqualTo(0), made);
            Assert.That(fs.Events.Skip(at + 1).Contains("sync " + Path.GetDirectoryName(made)), Is.True, $"{made} synced in its parent");
        }

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(File.Exists(Path.Join(state, "journal.db")), Is.True);
        Assert.That(Patcher.Status(s.InstallDir, options).InstalledVersion, Is.EqualTo(result.ToVersion));
    }

    /// <summary>Records directory creations and directory syncs, in order.</summary>
    private sealed class DirectoryEventFileOps(IFileOps inner) : FileOpsDecorator(inner)
    {
        public List<string> Events { get; } = [];

        public override void CreateDirectory(string path)
        {
            base.CreateDirectory(path);
            lock (Events) Events.Add("mkdir " + path);
        }

        public override void SyncDirectory(string path)
        {
            base.SyncDirectory(path);
            lock (Events) Events.Add("sync " + path);
        }
    }

    /// <summary>Refuses to rename the state directory while its lock file is held, with Windows' error for that case.</summary>
    private sealed class OpenLockPinsDirectoryFileOps(IFileOps inner, string stateDir) : FileOpsDecorator(inner)
    {
        public int RefusedRenames { get; private set; }

        public override void Rename(string from, string to)
        {
            if (from == stateDir)
            {
                using var probe = TransactionLock.TryAcquire(Path.Join(stateDir, "lock"));
                if (probe is null)
                {
                    RefusedRenames++;
                    throw new PatcherException(PatchErrorCode.AccessDenied, "a file in the directory is open (emulated Windows rule)", from);
                }
            }

            base.Rename(from, to);
        }
    }

    /// <summary>An install Patcher never touched (no state directory) and a patch whose largest blob is corrupt.</summary>
    private static PatchScenario UntrackedInstallWithACorruptBlob()
    {
        var s = new PatchScenario().WithSmallGame().Install();
        s.BuildPatch();
        CorruptLargestBlob(s);
        return s;
    }

    private static void CorruptLargestBlob(PatchScenario s)
    {
        var blob = Directory.EnumerateFiles(Path.Join(s.PatchDir, "blobs"), "*", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).First();
        var bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(blob, bytes);
    }

    [Test]
    public void Apply_CorruptBlobWithAnInstalledVersion_RefusedAndTheWholeRootUnchanged()
    {
        using var s = new PatchScenario().WithSmallGame(extraFiles: 30).InstallThroughPatcher();
        s.BuildPatch();
        CorruptLargestBlob(s);
        var before = PatchScenario.Listing(s.ParentDir);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BlobHashMismatch), ex.Message);
        Assert.That(PatchScenario.Listing(s.ParentDir), Is.EqualTo(before), "install, journal and state directory byte-identical");
    }
}
