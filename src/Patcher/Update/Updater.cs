using Patching.Sources;
using Patching.Transaction;

namespace Patching.Update;

/// <summary>
/// The update path from a release store: the signed channel pointer (<see cref="ChannelReader"/>), the signed manifest
/// it names and the version's index (<see cref="ReleaseReader"/>), then one of two routes (<see cref="DeltaChainPlanner"/>
/// chooses): the store's deltas (<see cref="DeltaRoute"/>), or the pieces, from the install where it holds them
/// (<see cref="PieceLocator"/>), from an earlier run, else downloaded (<see cref="PieceFetcher"/>), laid out as a patch
/// directory in <c>&lt;state&gt;/downloads/&lt;version&gt;</c> and applied with the usual transaction. A piece is written
/// there under its final name only after its SHA-256 matched, so whatever is found there on a later run is reused
/// (hashed again first: a file renamed before a power cut may not have reached the disk). Repair is <see cref="Repairer"/>.
/// </summary>
internal static class Updater
{
    public const string DownloadsDirName = DownloadFolder.DirName;

    public static async Task<UpdateCheck> CheckAsync(string installDir, IUpdateSource source, UpdateOptions options, CancellationToken ct)
    {
        var channel = await ChannelReader.ReadAsync(new UpdateRun(installDir, source, options, null), ct).ConfigureAwait(false);
        return new UpdateCheck(channel.Status.InstalledVersion, channel.Pointer.Version, channel.IsNewer, channel.Pointer.Expires);
    }

    /// <summary>Cancellation surfaces as <see cref="OperationCanceledException"/>; verified downloads are kept for the next run.</summary>
    public static Task<UpdateResult> UpdateAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        UpdateCoreAsync(new UpdateRun(installDir, source, options, progress), ct);

    public static Task<RepairResult> RepairAsync(string installDir, IUpdateSource source, UpdateOptions options, IProgress<PatchProgress>? progress, CancellationToken ct) =>
        Repairer.RepairAsync(new UpdateRun(installDir, source, options, progress), ct);

    private static async Task<UpdateResult> UpdateCoreAsync(UpdateRun run, CancellationToken ct)
    {
        if (run.Options.MaxParallelDownloads < 1) throw new ArgumentOutOfRangeException("options", "MaxParallelDownloads must be at least 1");
        var channel = await ChannelReader.ReadAsync(run, ct).ConfigureAwait(false);
        var (pointer, installed) = (channel.Pointer, channel.Status.InstalledVersion);
        if (!channel.IsNewer)
        {
            DownloadFolder.Prune(channel.Layout, installed);
            return new UpdateResult(UpdateStatus.UpToDate, installed, pointer.Version, 0, 0, 0, 0, null);
        }

        var layout = channel.Layout;
        var downloads = DownloadFolder.Create(run.InstallDir, ref layout);
        ChannelReader.RememberSequence(downloads, pointer);
        var patchDir = Path.Join(downloads, pointer.Version);
        Directory.CreateDirectory(patchDir);
        var reader = new ReleaseReader(run.Source, run.Options.Apply);
        var package = await reader.ReadManifestAsync(new ManifestRequest(pointer.Product, pointer.Version, pointer.ManifestSha256, patchDir), ct).ConfigureAwait(false);
        var store = await reader.ReadLayoutAsync(package, ct).ConfigureAwait(false);
        var plan = PieceLocator.Locate(run.InstallDir, package, store, ct);
        long deltaBytes = 0;
        if (installed is not null &&
            await DeltaChainPlanner.ChooseAsync(reader, new ChainSearch(pointer, store.Deltas, installed), patchDir, plan.RemoteStoredBytes, ct).ConfigureAwait(false) is { } chain)
        {
            var outcome = await DeltaRoute.RunAsync(run, pointer.Product, chain, patchDir, ct).ConfigureAwait(false);
            deltaBytes = outcome.Downloaded;
            if (outcome.Last is { } last)
            {
                var busy = last.Status == ApplyStatus.Busy;
                if (!busy) DownloadFolder.TryDelete(patchDir);
                return new UpdateResult(busy ? UpdateStatus.Busy : UpdateStatus.Updated, installed, pointer.Version, deltaBytes, 0, 0, 0, last) { DeltaFrom = installed };
            }

            // A step was refused before its commit; the steps before it are committed. The pieces are planned again
            // from the install as it is now.
            plan = PieceLocator.Locate(run.InstallDir, package, store, ct);
        }

        var counts = await PieceFetcher.MaterializeAsync(run, new VersionPieces(package, store, plan), ct).ConfigureAwait(false);
        var apply = await Task.Run(() => TransactionEngine.Apply(run.InstallDir, patchDir, run.Options.Apply, run.Progress, ct), CancellationToken.None).ConfigureAwait(false);
        var downloaded = counts.Downloaded + deltaBytes;
        var status = apply.Status == ApplyStatus.Busy ? UpdateStatus.Busy : UpdateStatus.Updated;
        if (status == UpdateStatus.Updated) DownloadFolder.TryDelete(patchDir);
        return new UpdateResult(status, installed, pointer.Version, downloaded, counts.Reused, counts.PiecesDownloaded, counts.PiecesReused, apply);
    }
}
