using Patching.IO;
using Patching.Journal;
using Patching.Manifests;
using Patching.State;
using Patching.Transaction;

namespace Patching.Update;

/// <summary>
/// Repair from a release store: checks the installed version's files, and when any is missing or modified, fetches
/// that version's pieces (those the install no longer holds) and applies the same version again.
/// </summary>
internal static class Repairer
{
    public static async Task<RepairResult> RepairAsync(UpdateRun run, CancellationToken ct)
    {
        var (installDir, options) = (run.InstallDir, run.Options);
        var apply = options.Apply;
        if (apply.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to repair from an unverifiable store", installDir);
        var status = InstallQueries.Status(installDir, apply);
        if (status.InstalledVersion is null || status.Product is null)
            throw new PatcherException(PatchErrorCode.NotManagedByPatcher, "no version was installed by Patcher here; nothing to repair against (install it with Patcher.UpdateAsync first)", installDir);
        var layout = DownloadFolder.Layout(installDir, apply);
        var report = options.FullRepair
            ? await Task.Run(() => InstallQueries.Verify(installDir, apply, ct), CancellationToken.None).ConfigureAwait(false)
            : QuickCheck(installDir, layout);
        if (report.Missing.Count == 0 && report.Modified.Count == 0)
            return new RepairResult(status.InstalledVersion, [], [], 0, 0, null);

        var patchDir = Path.Join(DownloadFolder.Create(installDir, ref layout), status.InstalledVersion);
        Directory.CreateDirectory(patchDir);
        var reader = new ReleaseReader(run.Source, apply);
        var package = await reader.ReadManifestAsync(new ManifestRequest(status.Product, status.InstalledVersion, null, patchDir), ct).ConfigureAwait(false);
        var store = await reader.ReadLayoutAsync(package, ct).ConfigureAwait(false);
        var plan = PieceLocator.Locate(installDir, package, store, ct);
        var counts = await PieceFetcher.MaterializeAsync(run, new VersionPieces(package, store, plan), ct).ConfigureAwait(false);
        // The same version again: every file is placed from the verified pieces, the intact ones included.
        var result = await Task.Run(() => TransactionEngine.Apply(installDir, patchDir, apply with { AllowDowngrade = true }, run.Progress, ct), CancellationToken.None).ConfigureAwait(false);
        if (result.Status == ApplyStatus.Applied) DownloadFolder.TryDelete(patchDir);
        return new RepairResult(status.InstalledVersion, report.Missing, report.Modified, counts.Downloaded, counts.PiecesDownloaded, result);
    }

    /// <summary>
    /// The quick check of a repair: every file of the installed version, as the journal recorded its manifest, must exist
    /// as a regular file of the recorded size. One stat per file and nothing read, so a deleted or truncated file is found
    /// at once; a byte changed in place is not (<see cref="UpdateOptions.FullRepair"/> hashes).
    /// </summary>
    private static VerifyReport QuickCheck(string installDir, StateLayout layout)
    {
        Manifest manifest;
        using (var journal = File.Exists(layout.JournalPath) ? JournalStore.OpenForReading(layout.JournalPath, layout.InstallDir) : null)
        {
            var installed = journal?.Installed()
                ?? throw new PatcherException(PatchErrorCode.NotManagedByPatcher, $"the journal at '{layout.JournalPath}' records no installed version, so there is nothing to repair against", installDir);
            manifest = ManifestCodec.Deserialize(installed.Manifest);
        }

        var missing = new List<string>();
        var modified = new List<string>();
        foreach (var f in manifest.Files)
        {
            var info = new FileInfo(PathRules.Join(installDir, f.Path));
            if (!info.Exists) missing.Add(f.Path);
            else if (info.LinkTarget is not null || info.Length != f.Size) modified.Add(f.Path);
        }

        return new VerifyReport(manifest.Version, manifest.Files.Count, missing, modified);
    }
}
