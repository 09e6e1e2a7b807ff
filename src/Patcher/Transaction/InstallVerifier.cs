using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.Progress;
using Patching.State;

namespace Patching.Transaction;

/// <summary>Checks the install against the manifest of the version the journal says is installed, without changing anything.</summary>
internal static class InstallVerifier
{
    public static VerifyReport Verify(EngineSettings engine, string installDir, PatcherOptions options, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        progress = ProgressTracker.Wrap(progress, options.TimeProvider);
        var layout = StatePlacement.Resolve(engine, installDir, options);
        if (!File.Exists(layout.JournalPath))
            throw NotManaged(layout, "no journal");
        Manifest manifest;
        using (var journal = JournalStore.OpenForReading(layout.JournalPath, layout.InstallDir))
        {
            var installed = journal?.Installed()
                ?? throw NotManaged(layout, "its journal records no installed version");
            manifest = ManifestCodec.Deserialize(installed.Manifest);
        }

        var missing = new System.Collections.Concurrent.ConcurrentBag<string>();
        var modified = new System.Collections.Concurrent.ConcurrentBag<string>();
        var fs = engine.FileSystem;
        // Reported as it reads: bytes hashed against the installed version's size, files as each one is finished.
        var files = manifest.Files.Count;
        var bytesTotal = manifest.Files.Sum(f => f.Size);
        long bytesRead = 0;
        var filesDone = 0;
        void Report(string? item) =>
            progress?.Report(new PatchProgress(PatchPhase.Verifying, Volatile.Read(ref filesDone), files, Interlocked.Read(ref bytesRead), bytesTotal) { CurrentItem = item });
        Report(null);
        Parallelism.ForEach(manifest.Files.OrderByDescending(f => f.Size), ct, f =>
        {
            var match = ContentHash.Compare(fs, PathRules.Join(layout.InstallDir, f.Path), f.Size, f.Sha256, ct,
                progress is null ? null : n =>
                {
                    Interlocked.Add(ref bytesRead, n);
                    Report(f.Path);
                });
            Interlocked.Increment(ref filesDone);
            Report(f.Path);
            switch (match)
            {
                case FileMatch.Missing:
                    missing.Add(f.Path);
                    break;
                case FileMatch.Differs:
                    modified.Add(f.Path);
                    break;
            }
        });
        progress?.Report(new PatchProgress(PatchPhase.Done, files, files, bytesTotal, bytesTotal));
        return new VerifyReport(manifest.Version, manifest.Files.Count,
            missing.Order(StringComparer.Ordinal).ToList(), modified.Order(StringComparer.Ordinal).ToList());
    }

    private static PatcherException NotManaged(StateLayout layout, string why) =>
        new(PatchErrorCode.NotManagedByPatcher,
            $"Patcher has not installed a version in '{layout.InstallDir}' ({why} at '{layout.JournalPath}'), so there is nothing to verify it against",
            layout.InstallDir);
}
