using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;

namespace Patching.Staging;

/// <summary>Format 2's part of receiving: contents rebuilt from the base and the payload.</summary>
internal sealed partial class BlobReceiver
{
    /// <summary>
    /// Rebuilds every recipe content some target file is written from into the incoming directory, as
    /// <see cref="Receive"/> does for blobs: verified operation by operation and as a whole, given its executable bit,
    /// fsynced, and then placed into the shadow tree by <see cref="ShadowTreeBuilder"/>. Runs before the transaction's
    /// first journal row, reading the install only: a damaged base or a hostile delta is refused with nothing to undo
    /// but the incoming directory.
    /// </summary>
    private void ReceiveRecipes(ApplyPlan plan, IReadOnlyDictionary<string, bool> executable, IProgress<PatchProgress>? progress, CancellationToken ct)
    {
        var recipes = package.Manifest.Recipes.Where(r => executable.ContainsKey(r.Sha256)).OrderByDescending(r => r.Size).ToList();
        if (recipes.Count == 0) return;
        package.CheckPayloadPresent();
        var walk = new Dictionary<string, EntryInfo>(StringComparer.Ordinal);
        foreach (var e in plan.InstallEntries ?? TreeOps.Walk(fs, plan.InstallDir)) walk[e.Path] = e.Info;
        using var receiver = new DeltaReceiver(fs, plan.InstallDir, package, walk);
        long bytesDone = 0;
        var done = 0;
        var reporting = new object();
        void Report()
        {
            if (progress is null) return;
            lock (reporting) progress.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref done), recipes.Count, Interlocked.Read(ref bytesDone), plan.BytesToWrite));
        }

        StagingWorkers.ForEach(recipes, ct, recipe =>
        {
            var x = executable[recipe.Sha256];
            var path = ReceivedBlobs.PathOf(incomingDir, recipe.Sha256);
            using (var output = fs.Create(path))
            {
                receiver.Write(recipe, output, n =>
                {
                    Interlocked.Add(ref bytesDone, n);
                    Interlocked.Add(ref _bytesWritten, n);
                    Report();
                }, ct);
                // The mode is inode metadata: set before the fsync, or a power cut could lose it.
                if (x) fs.SetExecutable(path, true);
                fs.Sync(output);
            }

            _received[recipe.Sha256] = x;
            Interlocked.Increment(ref done);
            Report();
        });
    }
}
