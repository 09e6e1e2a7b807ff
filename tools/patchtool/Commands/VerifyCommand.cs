using System.CommandLine;
using Patching;
using Patching.Signing;
using Patching.Sources;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool verify --patch PATCHDIR --trust PUB [--trust PUB2] [--threshold N] [--target INSTALLDIR] [--json]</c>:
/// the signature, every blob's size and hash, and optionally that an install matches the manifest's base list.
/// </summary>
internal sealed class VerifyCommand : IToolCommand
{
    private readonly Option<string> _patch = ToolOptions.Patch();
    private readonly Option<string[]> _trust = ToolOptions.Trust(required: true);
    private readonly Option<int> _threshold = ToolOptions.Threshold();
    private readonly Option<string?> _target = new("--target")
    {
        Description = "Also check that this install holds the base files the patch expects (size and SHA-256)",
        HelpName = "INSTALLDIR",
    };

    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("verify", "Check a patch's signature and every blob, and optionally an install's base files")
        {
            _patch, _trust, _threshold, _target, _json,
        };
        command.SetAction((pr, ct) => Task.FromResult(CommandRunner.Run(ctx, ToolOptions.Flag(pr, _json), ToolOptions.Flag(pr, global.Verbose), () => Run(ctx,
            new Settings(pr.GetValue(_patch)!, pr.GetValue(_trust) ?? [], pr.GetValue(_threshold), pr.GetValue(_target), ToolOptions.Flag(pr, _json)), ct))));
        return command;
    }

    internal sealed record Settings(string Patch, IReadOnlyList<string> Trust, int Threshold, string? Target, bool Json, TimeProvider? Time = null);

    internal static int Run(ToolContext ctx, Settings s, CancellationToken ct)
    {
        var pems = ToolOptions.ReadKeyFiles(s.Trust, "--trust");
        ToolOptions.CheckThreshold(s.Threshold, pems.Count);
        var target = s.Target is null ? null : Path.GetFullPath(s.Target);
        if (target is not null && !Directory.Exists(target))
            throw new PatcherException(PatchErrorCode.InstallNotFound, $"install directory '{target}' does not exist", target);

        var patch = Path.GetFullPath(s.Patch);
        var limits = ManifestLimits.Default;
        using var policy = TrustPolicy.FromPems(pems, s.Threshold);
        var package = PatchPackage.Open(patch, limits);
        IReadOnlyList<string> keys;
        try
        {
            keys = package.VerifySignature(policy, limits, (s.Time ?? TimeProvider.System).GetUtcNow());
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseManifestMissing && package.ListsChangesOnly && target is null)
        {
            return ChangesOnly(ctx, s, patch, pems);
        }

        package.VerifyAllBlobs(ct);
        var m = package.Manifest;
        var blobBytes = m.Blobs.Sum(b => b.StoredSize) + m.PayloadSize;

        TargetCheckDocument? targetDoc = null;
        List<BaseDifference> differences = [];
        if (target is not null)
        {
            var (count, missing, modified) = BaseCheck.Run(target, m, ct);
            differences = [.. missing, .. modified];
            targetDoc = new TargetCheckDocument(target, count, missing.Select(d => d.Path).ToList(), modified.Select(d => d.Path).ToList());
        }

        PatcherException? mismatch = differences.Count == 0
            ? null
            : new PatcherException(PatchErrorCode.BaseMismatch,
                $"{differences.Count} of {m.Base.Count} base file(s) in '{target}' differ from what the patch expects (first: {differences[0].Path}: {differences[0].Problem})", target);

        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new VerifyDocument(mismatch is null, patch, m.Product, m.Version, m.FromVersion, package.ManifestHash,
                keys, m.Blobs.Count, blobBytes, targetDoc, mismatch is null ? null : CommandRunner.Info(mismatch)));
        }
        else
        {
            ctx.Out.WriteLine($"verified {patch}");
            ctx.Out.WriteLine($"  product     {m.Product} {(m.IsFullPackage ? $"{m.Version} (full package)" : $"{m.FromVersion} -> {m.Version}")}");
            ctx.Out.WriteLine($"  manifest    sha256 {package.ManifestHash}");
            ctx.Out.WriteLine($"  signature   ok: {keys.Count} trusted key(s), threshold {s.Threshold} ({string.Join(", ", keys.Select(ToolOptions.ShortId))})");
            ctx.Out.WriteLine(m.Recipes.Count > 0
                ? $"  payload     ok: {ToolOptions.Bytes(blobBytes)}, every frame without a reference decodes to its SHA-256 (frames against the old version are checked when applied)"
                : $"  blobs       {m.Blobs.Count} ok: sizes and SHA-256 match ({ToolOptions.Bytes(blobBytes)} stored)");
            if (target is not null) PrintTarget(ctx.Out, target, m.Base.Count, differences);
        }

        if (mismatch is null) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(mismatch.Code, mismatch.Message, mismatch.Path));
        return ExitCodes.For(mismatch.Code);
    }

    /// <summary>
    /// A patch listing only its changes, without its base version's manifest here: the signature, expiry and listed paths
    /// are checked as <see cref="Patcher.ReadPatchInfo"/> checks them, the payload's length against the manifest, and the
    /// changes are reported as listed. Frames and base files need the base: they are checked when the patch is applied.
    /// </summary>
    private static int ChangesOnly(ToolContext ctx, Settings s, string patch, IReadOnlyList<string> pems)
    {
        var info = Patcher.ReadPatchInfo(patch, new PatcherOptions { TrustedKeys = pems, SignatureThreshold = s.Threshold, TimeProvider = s.Time ?? TimeProvider.System });
        var payloadPath = Path.Join(patch, Patching.Manifests.DeltaLimits.PayloadFileName);
        var payload = new FileInfo(payloadPath);
        if (!payload.Exists)
            throw new PatcherException(PatchErrorCode.BlobMissing, $"{Patching.Manifests.DeltaLimits.PayloadFileName} is missing from the patch", payloadPath);
        if (payload.Length != info.DownloadBytes)
            throw new PatcherException(PatchErrorCode.BlobSizeMismatch, $"{Patching.Manifests.DeltaLimits.PayloadFileName} is {payload.Length} bytes, the manifest declares {info.DownloadBytes}", payloadPath);
        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new VerifyDocument(true, patch, info.Product, info.Version, info.FromVersion, info.ManifestSha256,
                info.SigningKeyIds, 0, info.DownloadBytes, null, null));
            return ExitCodes.Ok;
        }

        ctx.Out.WriteLine($"verified {patch}");
        ctx.Out.WriteLine($"  product     {info.Product} {info.FromVersion} -> {info.Version}");
        ctx.Out.WriteLine($"  manifest    sha256 {info.ManifestSha256} (lists only the changes from {info.FromVersion})");
        ctx.Out.WriteLine($"  signature   ok: {info.SigningKeyIds.Count} trusted key(s), threshold {s.Threshold} ({string.Join(", ", info.SigningKeyIds.Select(ToolOptions.ShortId))})");
        ctx.Out.WriteLine($"  changes     {info.FilesAdded.Count} added, {info.FilesChanged.Count} changed, {info.FilesRemoved.Count} removed");
        ctx.Out.WriteLine($"  payload     {ToolOptions.Bytes(info.DownloadBytes)}, length as declared");
        ctx.Out.WriteLine($"  base        no {Patching.Manifests.VersionManifest.FileName} here: needed only to apply (an install Patcher updated has it in its journal); frames are checked when applied");
        return ExitCodes.Ok;
    }

    private static void PrintTarget(TextWriter output, string target, int baseCount, List<BaseDifference> differences)
    {
        if (baseCount == 0)
        {
            output.WriteLine($"  target      {target}: full package, no base files to check");
        }
        else if (differences.Count == 0)
        {
            output.WriteLine($"  target      {target}: all {baseCount} base files match");
        }
        else
        {
            output.WriteLine($"  target      {target}: {differences.Count} of {baseCount} base files differ");
            foreach (var d in differences) output.WriteLine($"    {d.Path}: {CommandRunner.OneLine(d.Problem)}");
        }
    }
}
