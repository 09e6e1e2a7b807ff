using Patching.Manifests;
using Patching.Sources;
using Patching.Store;
using Patching.Transaction;

namespace Patching.Update;

/// <summary>How a chain of deltas ended: the bytes it fetched, and the last transaction's result, or null when a step was refused.</summary>
internal sealed record DeltaChainOutcome(long Downloaded, ApplyResult? Last);

/// <summary>
/// Moves the install along a chain of stored format 2 deltas, one transaction per step: the step's signed manifest,
/// its payload fetched in segments (a resumed run continues where the last one stopped), then the usual transaction,
/// which checks every base range and every decoded byte against the signed hashes.
/// </summary>
internal static class DeltaRoute
{
    /// <summary>Segment of a delta's payload fetched per request (and kept on disk before the next, so a resume loses at most one).</summary>
    private const int DeltaSegmentBytes = 1024 * 1024;

    private const string PartialSuffix = ".part";

    /// <summary>
    /// Runs the steps in order. Stops at the first step the install is busy for (its result is the last one) or that is
    /// refused before its commit (the last result is then null: the steps before it are committed, and the caller takes
    /// the pieces from the install as it is now).
    /// </summary>
    public static async Task<DeltaChainOutcome> RunAsync(UpdateRun run, string product, IReadOnlyList<DeltaChainStep> chain, string patchDir, CancellationToken ct)
    {
        long downloaded = 0;
        ApplyResult? last = null;
        foreach (var step in chain)
        {
            var outcome = await TryStepAsync(run, new DeltaStepTarget(product, step, DeltaChainPlanner.DeltaDir(patchDir, step)), ct).ConfigureAwait(false);
            if (outcome is null) return new DeltaChainOutcome(downloaded, null);
            downloaded += outcome.Downloaded;
            last = outcome.Last;
            if (last!.Status == ApplyStatus.Busy) break;
        }

        return new DeltaChainOutcome(downloaded, last);
    }

    /// <summary>
    /// Moves the install one step through a stored delta, whose signed manifest must lead from
    /// <see cref="StoredDelta.From"/> to the step's version. Returns null when the delta does not fit the install or its
    /// payload proves bad before anything changed (a refusal of the transaction): the caller then takes the pieces.
    /// </summary>
    private static async Task<DeltaChainOutcome?> TryStepAsync(UpdateRun run, DeltaStepTarget target, CancellationToken ct)
    {
        var apply = run.Options.Apply;
        var name = target.Name;
        Directory.CreateDirectory(target.Dir);
        var downloaded = await FetchManifestAsync(run.Source, apply, target, ct).ConfigureAwait(false);
        PatchPackage package;
        try
        {
            package = new ReleaseReader(run.Source, apply).OpenVerified(target.Dir, () => StatePlacement.InstalledManifest(TransactionEngine.Default, run.InstallDir, apply));
        }
        catch (PatcherException ex) when (ex.Code is PatchErrorCode.BaseManifestMissing or PatchErrorCode.BaseManifestMismatch)
        {
            // The journal does not record the delta's base (an install Patcher did not make, or another build of that
            // version): the pieces route checks everything it reuses instead.
            DownloadFolder.TryDelete(target.Dir);
            return null;
        }

        var m = package.Manifest;
        var (delta, version) = (target.Step.Delta, target.Step.To);
        if (m.Product != target.Product || m.Version != version || m.FromVersion != delta.From || m.PayloadSize > delta.Bytes)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"the delta in {name} is not {target.Product} {delta.From} -> {version} of at most {delta.Bytes} bytes", name);
        downloaded += await FetchPayloadAsync(run, target, m.PayloadSize, ct).ConfigureAwait(false);

        try
        {
            var result = await Task.Run(() => TransactionEngine.Apply(run.InstallDir, target.Dir, apply, run.Progress, ct), CancellationToken.None).ConfigureAwait(false);
            return new DeltaChainOutcome(downloaded, result);
        }
        catch (PatcherException ex) when (!ex.NewVersionInPlace && ((int)ex.Code is >= 100 and < 200 || ex.Code == PatchErrorCode.BaseMismatch))
        {
            // The install does not match the delta's base (damaged, or changed by hand), or the delta is bad: nothing was
            // committed, and the pieces route checks everything it reuses.
            DownloadFolder.TryDelete(target.Dir);
            return null;
        }
    }

    /// <summary>Fetches the delta's manifest and signature unless an earlier run did; returns the bytes fetched.</summary>
    private static async Task<long> FetchManifestAsync(IUpdateSource source, PatcherOptions apply, DeltaStepTarget target, CancellationToken ct)
    {
        var manifestPath = Path.Join(target.Dir, ManifestCodec.BinaryManifestFileName);
        if (File.Exists(manifestPath)) return 0;
        var from = target.Step.Delta.From;
        var sigName = target.Name + "/" + ManifestCodec.SignatureFileName;
        var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, apply.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store lists a delta from {from} but has no {sigName}", sigName);
        var manifestName = target.Name + "/" + ManifestCodec.BinaryManifestFileName;
        var bytes = await source.ReadAllAsync(manifestName, (int)Math.Min(int.MaxValue, apply.Limits.MaxManifestBytes), ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store lists a delta from {from} but has no {manifestName}", manifestName);
        DownloadFolder.WriteReplacing(Path.Join(target.Dir, ManifestCodec.SignatureFileName), sig);
        DownloadFolder.WriteReplacing(manifestPath, bytes);
        return sig.Length + bytes.Length;
    }

    /// <summary>
    /// Fetches the delta's payload in segments appended to a partial file, flushed after each, then renamed to its final
    /// name; a partial file from an earlier run is continued. Returns the bytes fetched now.
    /// </summary>
    private static async Task<long> FetchPayloadAsync(UpdateRun run, DeltaStepTarget target, long payloadSize, CancellationToken ct)
    {
        var payloadPath = Path.Join(target.Dir, ReleaseStore.DeltaPayloadName);
        if (payloadSize <= 0 || File.Exists(payloadPath)) return 0;
        var partPath = payloadPath + PartialSuffix;
        long downloaded = 0;
        await using (var part = new FileStream(partPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None))
        {
            var have = Math.Min(part.Length, payloadSize);
            part.SetLength(have);
            part.Seek(have, SeekOrigin.Begin);
            var segments = (int)((payloadSize + DeltaSegmentBytes - 1) / DeltaSegmentBytes);
            var download = DownloadProgress.Start(run.Progress, run.Options.Apply.TimeProvider);
            download?.Report(new PatchProgress(PatchPhase.Downloading, (int)(have / DeltaSegmentBytes), segments, 0, payloadSize - have));
            var name = target.Name + "/" + ReleaseStore.DeltaPayloadName;
            for (var offset = have; offset < payloadSize;)
            {
                var length = (int)Math.Min(DeltaSegmentBytes, payloadSize - offset);
                var bytes = await run.Source.ReadAsync(name, offset, length, ct).ConfigureAwait(false);
                if (bytes.Length != length)
                    throw new PatcherException(PatchErrorCode.SourceUnavailable, $"{name} answered {bytes.Length} bytes, {length} asked at {offset}", target.Name);
                await part.WriteAsync(bytes, ct).ConfigureAwait(false);
                await part.FlushAsync(ct).ConfigureAwait(false);
                offset += length;
                downloaded += length;
                download?.Report(new PatchProgress(PatchPhase.Downloading, (int)((offset + DeltaSegmentBytes - 1) / DeltaSegmentBytes), segments, offset - have, payloadSize - have));
            }

            part.Flush(flushToDisk: true);
        }

        File.Move(partPath, payloadPath, overwrite: true);
        return downloaded;
    }
}

/// <summary>One step of a chain to run: the product, the step, and the folder its delta is fetched to.</summary>
internal sealed record DeltaStepTarget(string Product, DeltaChainStep Step, string Dir)
{
    /// <summary>The delta's folder in the store.</summary>
    public string Name => SourceNames.DeltaDir(Step.To, Step.Delta.From);
}
