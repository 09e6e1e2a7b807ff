using Microsoft.Extensions.Logging;
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
        var recipes = InDependencyOrder(package.Manifest.Recipes, executable.ContainsKey);
        if (recipes.Count == 0) return;
        var placedCount = recipes.Count(r => executable.ContainsKey(r.Sha256));
        CreateFanOuts(recipes, executable);
        package.CheckPayloadPresent();
        var walk = new Dictionary<string, EntryInfo>(StringComparer.Ordinal);
        foreach (var e in plan.InstallEntries ?? TreeOps.Walk(fs, plan.InstallDir)) walk[e.Path] = e.Info;
        var completions = new ContentCompletions(recipes);
        using var receiver = new DeltaReceiver(fs, plan.InstallDir, package, walk) { ContentPath = sha => completions.Wait(sha, ct) };
        long bytesDone = 0;
        var done = 0;
        var reporting = new object();
        void Report()
        {
            if (progress is null) return;
            lock (reporting) progress.Report(new PatchProgress(PatchPhase.Staging, Volatile.Read(ref done), placedCount, Interlocked.Read(ref bytesDone), plan.BytesToWrite));
        }

        var checkpoints = Checkpoints;
        checkpoints?.Open();
        StagingWorkers.ForEach(recipes, ct, recipe =>
        {
            // A content only other contents read is rebuilt but not placed: it counts in no progress the plan announced.
            var placed = executable.TryGetValue(recipe.Sha256, out var x);
            var path = checkpoints?.PathOf(recipe.Sha256) ?? ReceivedBlobs.PathOf(incomingDir, recipe.Sha256);
            void OnBytes(long n)
            {
                if (placed) Interlocked.Add(ref bytesDone, n);
                Interlocked.Add(ref _bytesWritten, n);
                Report();
            }

            completions.Run(recipe.Sha256, path, () => Rebuild(receiver, checkpoints, recipe, path, x, OnBytes, ct));
            if (!placed) return;
            if (checkpoints is not null) _rebuilt[recipe.Sha256] = path;
            _received[recipe.Sha256] = x;
            Interlocked.Increment(ref done);
            Report();
        });

        var (ops, bytes) = receiver.Produced;
        var (keptBytes, kept) = checkpoints?.Resumed ?? (0, 0);
        log.LogInformation("Rebuilt {Count} contents: {Ops} operations run ({Bytes} bytes); {Kept} bytes of {Resumed} contents kept from an earlier attempt",
            recipes.Count, ops, bytes, keptBytes, kept);
    }

    /// <summary>Rebuilds <paramref name="recipe"/> into <paramref name="path"/>: resumably when there are checkpoints.</summary>
    private void Rebuild(DeltaReceiver receiver, ContentCheckpoints? checkpoints, ContentRecipe recipe, string path, bool x, Action<long> onBytes, CancellationToken ct)
    {
        if (checkpoints is not null)
        {
            RebuildResumable(receiver, checkpoints, recipe, path, x, onBytes, ct);
            return;
        }

        using var output = fs.Create(path);
        receiver.Write(recipe, output, onBytes, ct);
        Finish(path, output, x);
    }

    /// <summary>
    /// Rebuilds <paramref name="recipe"/> into its partial file, continuing a verified prefix an earlier attempt recorded.
    /// A continued content whose whole does not hash to its signed SHA-256 is rebuilt once more from its start, trusting
    /// nothing of the earlier attempt (a hostile delta fails again, with its own error).
    /// </summary>
    private void RebuildResumable(DeltaReceiver receiver, ContentCheckpoints checkpoints, ContentRecipe recipe, string path, bool x, Action<long> onBytes, CancellationToken ct)
    {
        for (var mayResume = true; ; mayResume = false)
        {
            var (output, prefix) = checkpoints.OpenOutput(recipe, mayResume, ct);
            using (output)
            using (prefix)
            {
                var resumed = prefix.Ops > 0;
                var wasComplete = prefix.Ops == recipe.Ops.Count;
                var recorded = prefix.Length;
                try
                {
                    receiver.Write(recipe, output, prefix, p => checkpoints.AfterOperation(recipe, output, p, ref recorded), onBytes, ct);
                }
                catch (PatcherException ex) when (resumed && ex.Code == PatchErrorCode.DeltaOutputMismatch)
                {
                    log.LogWarning("Content {Content} continued after an earlier attempt does not verify ({Reason}); rebuilding it from its start", recipe.Sha256, ex.Message);
                    continue;
                }

                Finish(path, output, x);
                checkpoints.Completed(recipe, prefix, wasComplete);
                return;
            }
        }
    }

    /// <summary>The mode is inode metadata: set before the fsync, or a power cut could lose it.</summary>
    private void Finish(string path, Stream output, bool executable)
    {
        if (executable) fs.SetExecutable(path, true);
        fs.Sync(output);
    }
}
