using System.CommandLine;
using System.Globalization;
using Patching;
using Patching.Manifests;
using Patching.Sources;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool inspect --patch PATCHDIR [--json]</c>: what a patch would do, without trusting it: product,
/// versions, dates, files added/changed/removed/unchanged, bytes to download, who claims to have signed it.
/// </summary>
internal sealed class InspectCommand : IToolCommand
{
    /// <summary>Paths listed per category in text mode; --json lists all.</summary>
    internal const int TextListLimit = 20;

    private readonly Option<string> _patch = ToolOptions.Patch();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("inspect", "Show what a patch contains and would change (signatures are listed, not verified)") { _patch, _json };
        command.SetAction(pr => CommandRunner.Run(ctx, ToolOptions.Flag(pr, _json), ToolOptions.Flag(pr, global.Verbose),
            () => Run(ctx, new Settings(pr.GetValue(_patch)!, ToolOptions.Flag(pr, _json)))));
        return command;
    }

    internal sealed record Settings(string Patch, bool Json);

    internal static int Run(ToolContext ctx, Settings s)
    {
        var patch = Path.GetFullPath(s.Patch);
        var package = PatchPackage.Open(patch, ManifestLimits.Default);
        var raw = package.Raw;
        Manifest m;
        PatchSummary summary;
        var baseKnown = true;
        try
        {
            m = package.Manifest;
            summary = PatchSummary.Of(m);
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.BaseManifestMissing && raw is not null)
        {
            // Without the base version the changes are still shown, as listed.
            (m, summary) = ChangesAlone(raw);
            baseKnown = false;
        }

        // The identity a transaction would record; without the base, that of the signed bytes.
        var manifestHash = baseKnown ? package.ManifestHash : ManifestCodec.Hash(package.SignedBytes);
        InspectBase? baseDoc = raw is { BaseManifest: { } b, TargetManifest: { } t } ? new InspectBase(b, t, baseKnown) : null;
        // Unverified content is still validated, so nothing hostile (control characters, traversal) gets printed.
        if (baseKnown) ManifestValidator.Validate(m, ManifestLimits.Default);
        var keyIds = package.Envelope?.Signatures.Select(x => x.KeyId).ToList() ?? [];

        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new InspectDocument(
                true, patch, m.Format, m.Product, m.Version, m.FromVersion, m.IsFullPackage, m.Created, m.Expires, manifestHash,
                new InspectCounts(summary.Added.Count, summary.Changed.Count, summary.Removed.Count, summary.Unchanged.Count, m.Files.Count, m.Base.Count),
                new InspectFiles(summary.Added, summary.Changed, summary.Removed, summary.Unchanged),
                new InspectDirectories(summary.DirectoriesAdded, summary.DirectoriesRemoved),
                new InspectBytes(summary.DownloadBytes, summary.BlobContentBytes, summary.TargetBytes),
                m.Blobs.Count,
                keyIds.Select(CommandRunner.OneLine).ToList(),
                m.Format == MessagePackManifest.Format ? Contents(m) : null,
                baseDoc));
            return ExitCodes.Ok;
        }

        var o = ctx.Out;
        o.WriteLine($"patch        {patch}");
        o.WriteLine($"product      {m.Product}");
        o.WriteLine(m.IsFullPackage ? $"version      {m.Version} (full package)" : $"version      {m.FromVersion} -> {m.Version}");
        o.WriteLine($"created      {Time(m.Created)}");
        o.WriteLine($"expires      {(m.Expires is { } e ? Time(e) : "never")}");
        o.WriteLine($"manifest     format {m.Format}, sha256 {manifestHash}");
        if (baseDoc is not null)
            o.WriteLine($"lists        only changes from base manifest {baseDoc.BaseManifestSha256}{(baseDoc.BaseKnown ? "" : $" (no {VersionManifest.FileName} here: unchanged files unknown)")}");
        o.WriteLine($"files        {m.Files.Count} in target: {summary.FileCountsLine}");
        o.WriteLine($"directories  {m.Directories.Count} in target: {summary.DirectoriesAdded.Count} added, {summary.DirectoriesRemoved.Count} removed");
        o.WriteLine(m.Format == MessagePackManifest.Format
            ? $"download     {ToolOptions.Bytes(summary.DownloadBytes)} ({summary.DownloadBytes} bytes) of payload for {m.Recipes.Count} rebuilt content(s), {summary.BlobContentBytes} bytes rebuilt ({m.Recipes.Sum(r => r.Ops.Where(op => op.Kind == DeltaOpKind.Copy).Sum(op => op.Length))} copied from the installed version)"
            : $"download     {ToolOptions.Bytes(summary.DownloadBytes)} ({summary.DownloadBytes} bytes) in {m.Blobs.Count} blob(s), {summary.BlobContentBytes} bytes uncompressed");
        o.WriteLine($"target size  {ToolOptions.Bytes(summary.TargetBytes)} ({summary.TargetBytes} bytes)");
        if (keyIds.Count == 0)
            o.WriteLine("signatures   none (unsigned)");
        else
            o.WriteLine($"signatures   {keyIds.Count}, claimed by key id(s) {string.Join(", ", keyIds.Select(k => CommandRunner.OneLine(ToolOptions.ShortId(k))))} (not verified: use patchtool verify)");

        List(o, '+', summary.Added);
        List(o, '~', summary.Changed);
        List(o, '-', summary.Removed);
        foreach (var d in summary.DirectoriesAdded) o.WriteLine($"  + {d}/");
        foreach (var d in summary.DirectoriesRemoved) o.WriteLine($"  - {d}/");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// A manifest listing only changes, shown without its base: the files added and changed as the target, the removed
    /// ones as base files; operations name base files as <c>#N</c>, their index in the base version's file list.
    /// Unchanged files and directory changes are unknown.
    /// </summary>
    private static (Manifest, PatchSummary) ChangesAlone(RawManifest raw)
    {
        var files = ManifestChanges.Listed(raw.Added!, raw.Changed!);
        // A hash left out because it is a whole base file's is shown as that: the base's hashes are not at hand.
        const string WholeBaseFile = "(the whole base file's)";
        string ContentAt(int index) => index >= 0 && index < raw.Contents.Count && raw.Contents[index].File is var f && f >= 0 && f < files.Count
            ? files[f].Sha256
            : $"(content {index}, not listed)";
        var recipes = raw.Contents.Where(c => c.File >= 0 && c.File < files.Count).Select(c => new ContentRecipe
        {
            Sha256 = files[c.File].Sha256,
            Size = files[c.File].Size,
            Ops = c.Ops.Select(o => o.Op with
            {
                Sha256 = o.Op.Sha256.Length > 0 ? o.Op.Sha256 : c.Ops.Count == 1 ? files[c.File].Sha256 : WholeBaseFile,
                BasePath = o.Op.Kind == DeltaOpKind.Copy ? $"#{o.BaseIndex}" : null,
                Refs = o.Refs.Select(r => r.InContent
                    ? RefWindow.InContent(ContentAt(r.Index), r.Offset, r.Length, r.Sha ?? ContentAt(r.Index))
                    : new RefWindow($"#{r.Index}", r.Offset, r.Length, r.Sha ?? WholeBaseFile)).ToList(),
            }).ToList(),
        }).ToList();
        // Checked before printing as far as it can be without the base: paths, sizes and hashes of what is listed (each
        // listed file standing in the base list for its own content, the removed paths as empty files).
        var baseFiles = files.Select(f => new BaseFile { Path = f.Path, Size = f.Size, Sha256 = f.Sha256 })
            .Concat(raw.Removed!.Select(p => new BaseFile { Path = p, Size = 0, Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData([])) }))
            .OrderBy(b => b.Path, StringComparer.Ordinal).ToList();
        var m = raw.Trees(null) with { Files = files, Base = baseFiles, BaseDirectories = raw.Directories!, PayloadSize = raw.Payload };
        ManifestValidator.Validate(m, ManifestLimits.Default);
        m = m with { Recipes = recipes };
        var summary = new PatchSummary(raw.Added!.Select(f => f.Path).ToList(), raw.Changed!.Select(f => f.Path).ToList(), raw.Removed!, [], [], [],
            raw.Payload, recipes.Sum(r => r.Size), files.Sum(f => f.Size));
        return (m, summary);
    }

    /// <summary>Format 2's recipes, readably: base files by path, hashes in hex.</summary>
    private static List<InspectContent> Contents(Manifest m)
    {
        var files = m.Files.GroupBy(f => f.Sha256, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(f => f.Path).ToList(), StringComparer.Ordinal);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < m.Recipes.Count; i++) index.TryAdd(m.Recipes[i].Sha256, i);
        InspectReference Reference(RefWindow x) => x.Content is { } content
            ? new InspectReference(null, x.Offset, x.Length, x.Sha256, index.TryGetValue(content, out var i) ? i : null, content)
            : new InspectReference(x.Path, x.Offset, x.Length, x.Sha256, null, null);
        return m.Recipes.Select(r => new InspectContent(r.Sha256, r.Size, files.GetValueOrDefault(r.Sha256, []), r.Ops.Select(op => op.Kind == DeltaOpKind.Copy
            ? new InspectOperation("copy", op.Length, op.Sha256, op.BasePath, op.BaseOffset, null, null, null)
            : new InspectOperation("data", op.Length, op.Sha256, null, null, op.PayloadOffset, op.StoredLength,
                op.Refs.Select(Reference).ToList())).ToList())).ToList();
    }

    private static void List(TextWriter o, char mark, IReadOnlyList<string> paths)
    {
        foreach (var p in paths.Take(TextListLimit)) o.WriteLine($"  {mark} {p}");
        if (paths.Count > TextListLimit) o.WriteLine($"  {mark} ... and {paths.Count - TextListLimit} more (--json lists all)");
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
