using System.CommandLine;
using System.Globalization;
using Patching.Building;
using Patching.Manifests;
using Patching.Sources;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool build --from OLD --to NEW --out PATCHDIR --key signing.key --product ID --version V --from-version V</c>.
/// Without --from: a full package. Without --key: an unsigned patch for offline signing with <c>patchtool sign</c>.
/// </summary>
internal sealed class BuildCommand : IToolCommand
{
    private readonly Option<string?> _from = new("--from") { Description = "The old version's tree (omit for a full package)", HelpName = "OLD" };
    private readonly Option<string> _to = new("--to") { Description = "The new version's tree", HelpName = "NEW", Required = true };
    private readonly Option<string> _out = new("--out") { Description = "Directory to write the patch to (new or empty)", HelpName = "PATCHDIR", Required = true };
    private readonly Option<string?> _key = new("--key") { Description = "Private key to sign with (omit for an unsigned patch)", HelpName = "KEYFILE" };
    private readonly Option<string> _product = new("--product") { Description = "Product id the patch is for", HelpName = "ID", Required = true };
    private readonly Option<string> _version = new("--version") { Description = "Version of the new tree (1 to 4 numbers, e.g. 1.4.2)", HelpName = "V", Required = true };
    private readonly Option<string?> _fromVersion = new("--from-version") { Description = "Version of the old tree (required with --from)", HelpName = "V" };
    private readonly Option<string?> _expires = new("--expires") { Description = "Refuse the patch after this time (ISO 8601, e.g. 2026-01-31T00:00:00Z)", HelpName = "ISO8601" };
    private readonly Option<bool> _noCompress = new("--no-compress") { Description = "Store every blob uncompressed (default: Brotli where it saves 5% or more)" };
    private readonly Option<bool> _force = new("--force") { Description = "Replace a patch already in --out (only its manifest, manifest.sig, payload.bin, base.msgpack and blobs/ are removed)" };
    private readonly Option<int> _format = new("--format")
    {
        Description = "Patch format: 2 (default; reuses content from anywhere in the old version, zstd deltas) or 1 (whole changed files, Brotli)",
        HelpName = "1|2",
        DefaultValueFactory = _ => MessagePackManifest.Format,
    };

    private readonly Option<int> _level = new("--level")
    {
        Description = $"zstd level of format 2 (1 to 22; default: {PatchBuilder.DefaultLevel}, the smallest downloads at a build speed still practical, or {PatchBuilder.LargeUpdateLevel} when over {PatchBuilder.LargeUpdateBytes >> 20} MiB of files need rebuilding)",
        HelpName = "N",
        DefaultValueFactory = _ => PatchBuilder.AutoLevel,
    };

    private readonly Option<bool> _fullManifest = new("--full-manifest")
    {
        Description = "Format 2 patch: list every file of both versions in the manifest (default: only what changes, naming the old version's manifest by its hash)",
    };

    private readonly Option<bool> _noBaseManifest = new("--no-base-manifest")
    {
        Description = $"Format 2 patch: do not write the old version's manifest ({VersionManifest.FileName}) beside the patch; installs whose journal does not record the old version then cannot apply it",
    };

    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("build", "Build a patch (or, without --from, a full package) from two trees")
        {
            _from, _to, _out, _key, _product, _version, _fromVersion, _expires, _noCompress, _force, _format, _level, _fullManifest, _noBaseManifest, _json,
        };
        command.SetAction(pr => CommandRunner.Run(ctx, ToolOptions.Flag(pr, _json), ToolOptions.Flag(pr, global.Verbose), () => Run(ctx, new Settings(
            pr.GetValue(_from), pr.GetValue(_to)!, pr.GetValue(_out)!, pr.GetValue(_key), pr.GetValue(_product)!,
            pr.GetValue(_version)!, pr.GetValue(_fromVersion), pr.GetValue(_expires), !ToolOptions.Flag(pr, _noCompress), ToolOptions.Flag(pr, _force))
        {
            Format = pr.GetValue(_format),
            Level = pr.GetValue(_level),
            FullManifest = ToolOptions.Flag(pr, _fullManifest),
            BaseManifest = !ToolOptions.Flag(pr, _noBaseManifest),
            Json = ToolOptions.Flag(pr, _json),
        })));
        return command;
    }

    internal sealed record Settings(
        string? From, string To, string Out, string? Key, string Product, string Version, string? FromVersion,
        string? Expires, bool Compress, bool Force, TimeProvider? Time = null)
    {
        public int Format { get; init; } = MessagePackManifest.Format;
        public int Level { get; init; } = PatchBuilder.AutoLevel;
        public bool FullManifest { get; init; }
        public bool BaseManifest { get; init; } = true;
        public bool Json { get; init; }
    }

    internal static int Run(ToolContext ctx, Settings s)
    {
        var time = s.Time ?? TimeProvider.System;
        var to = ToolOptions.RequireDirectory(s.To, "--to");
        var from = s.From is null ? null : ToolOptions.RequireDirectory(s.From, "--from");
        CheckSettings(s, from);
        var expires = ParseExpires(s.Expires, time);
        string? privatePem = null;
        if (s.Key is not null)
        {
            if (!File.Exists(s.Key)) throw new UsageException($"--key '{s.Key}': no such file");
            privatePem = File.ReadAllText(s.Key);
        }

        var outDir = Path.GetFullPath(s.Out);
        foreach (var (tree, option) in new[] { (to, "--to"), (from, "--from") })
        {
            if (tree is not null && (IsSameOrInside(outDir, tree) || IsSameOrInside(tree, outDir)))
                throw new UsageException($"--out '{s.Out}' overlaps {option} '{tree}'; write the patch outside both trees");
        }

        PrepareOutput(outDir, s.Force);

        var result = PatchBuilder.Build(new BuildRequest
        {
            FromDir = from,
            ToDir = to,
            OutDir = outDir,
            Product = s.Product,
            Version = s.Version,
            FromVersion = s.FromVersion,
            PrivateKeyPem = privatePem,
            Expires = expires,
            Compress = s.Compress,
            Time = time,
            Format = s.Format,
            Level = s.Level,
            ListUnchanged = s.FullManifest,
            WriteBaseManifest = s.BaseManifest,
        });

        var summary = PatchSummary.Of(result.Manifest);
        var doc = Document(outDir, result, summary, s.Format == MessagePackManifest.Format ? result.Level : null);
        if (s.Json) JsonOutput.Write(ctx.Out, doc);
        else PrintSummary(ctx.Out, result, summary, doc, result.Level, signed: privatePem is not null);
        return ExitCodes.Ok;
    }

    /// <summary>Refuses settings that cannot make a patch, before anything is read or written.</summary>
    private static void CheckSettings(Settings s, string? from)
    {
        if (from is not null && s.FromVersion is null) throw new UsageException("--from-version is required with --from");
        if (from is null && s.FromVersion is not null)
            throw new UsageException("--from-version needs --from (without --from, build writes a full package)");
        if (!PatchVersion.TryParse(s.Version, out _)) throw new UsageException($"--version '{s.Version}' is not a version (1 to 4 dot-separated numbers, e.g. 1.4.2)");
        if (s.FromVersion is not null && !PatchVersion.TryParse(s.FromVersion, out _))
            throw new UsageException($"--from-version '{s.FromVersion}' is not a version (1 to 4 dot-separated numbers, e.g. 1.4.2)");
        if (string.IsNullOrWhiteSpace(s.Product)) throw new UsageException("--product must not be empty");
        if (s.Format is not (1 or 2)) throw new UsageException($"--format {s.Format} is not a patch format (1 or 2)");
        if (s.Level != PatchBuilder.AutoLevel && s.Level is < 1 or > 22) throw new UsageException($"--level {s.Level} is not a zstd level (1 to 22)");
    }

    /// <summary>The <c>--expires</c> time, which must lie in the future; null without the option.</summary>
    private static DateTimeOffset? ParseExpires(string? text, TimeProvider time)
    {
        if (text is null) return null;
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var e))
            throw new UsageException($"--expires '{text}' is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)");
        if (e <= time.GetUtcNow()) throw new UsageException($"--expires {e:u} is already in the past");
        return e;
    }

    private static void PrintSummary(TextWriter output, BuildResult result, PatchSummary summary, BuildDocument doc, int level, bool signed)
    {
        var m = result.Manifest;
        output.WriteLine(m.IsFullPackage
            ? $"built full package {m.Product} {m.Version} in {doc.Patch}"
            : $"built patch {m.Product} {m.FromVersion} -> {m.Version} in {doc.Patch}");
        output.WriteLine($"  files      {m.Files.Count} in target: {summary.FileCountsLine}");
        if (m.Format == MessagePackManifest.Format)
        {
            output.WriteLine($"  format     2, zstd level {level}");
            output.WriteLine($"  reused     {ToolOptions.Bytes(doc.ReusedBytes)} ({doc.ReusedBytes} bytes) from the old version, not downloaded");
            output.WriteLine($"  deltas     {ToolOptions.Bytes(doc.DeltaBytes)} ({doc.DeltaBytes} bytes) for {doc.DeltaContentBytes} bytes of changed content"
                + (doc.EarlierContentBytes > 0 ? $"; {doc.EarlierContentBytes} bytes of them also against files the patch rebuilds earlier" : ""));
            output.WriteLine($"  whole      {ToolOptions.Bytes(doc.WholeBytes)} ({doc.WholeBytes} bytes) for {doc.WholeContentBytes} bytes of new content");
        }
        else
        {
            output.WriteLine($"  blobs      {result.BlobCount}, {ToolOptions.Bytes(result.BlobBytes)} to download ({result.BlobBytes} bytes)");
        }

        output.WriteLine($"  manifest   {result.ManifestPath} ({doc.ManifestBytes} bytes)");
        output.WriteLine($"  total      {ToolOptions.Bytes(doc.TotalBytes)} ({doc.TotalBytes} bytes) to download");
        var basePath = Path.Join(doc.Patch, VersionManifest.FileName);
        if (File.Exists(basePath))
            output.WriteLine($"  base       {basePath} ({new FileInfo(basePath).Length} bytes): the old version's manifest, downloaded only by installs whose journal does not record it");
        output.WriteLine(signed
            ? $"  signature  {Path.Join(doc.Patch, ManifestCodec.SignatureFileName)}"
            : "  signature  none: UNSIGNED (sign it with: patchtool sign --patch PATCHDIR --key signing.key)");
    }

    private static BuildDocument Document(string outDir, BuildResult result, PatchSummary summary, int? level)
    {
        var m = result.Manifest;
        var sigPath = Path.Join(outDir, ManifestCodec.SignatureFileName);
        var signature = File.Exists(sigPath) ? new FileInfo(sigPath).Length : 0;
        var basePath = Path.Join(outDir, VersionManifest.FileName);
        var d = result.Deltas;
        // Format 1 reuses whole files only and ships every other content whole as a blob.
        var shipped = m.Blobs.Select(b => b.Sha256).ToHashSet(StringComparer.Ordinal);
        var reused = d?.ReusedBytes ?? m.Files.Where(f => !shipped.Contains(f.Sha256)).Sum(f => f.Size);
        return new BuildDocument(
            true, outDir, m.Format, level, m.Product, m.Version, m.FromVersion, m.Files.Count, summary.TargetBytes,
            reused, d?.DeltaBytes ?? 0, d?.DeltaContentBytes ?? 0, d?.WholeBytes ?? result.BlobBytes, d?.WholeContentBytes ?? m.Blobs.Sum(b => b.Size),
            result.ManifestBytes, signature, result.BlobBytes, result.ManifestBytes + signature + result.BlobBytes, signature > 0,
            File.Exists(basePath) ? new FileInfo(basePath).Length : 0, d?.EarlierContentBytes ?? 0);
    }

    private static void PrepareOutput(string outDir, bool force)
    {
        if (!Directory.Exists(outDir))
        {
            Directory.CreateDirectory(outDir);
            return;
        }

        var entries = Directory.EnumerateFileSystemEntries(outDir).Select(Path.GetFileName).ToList();
        if (entries.Count == 0) return;
        if (!force) throw new UsageException($"--out '{outDir}' is not empty; choose a new directory or pass --force to replace the patch in it");
        var foreign = entries.Where(e => e is not (ManifestCodec.ManifestFileName or ManifestCodec.BinaryManifestFileName or ManifestCodec.SignatureFileName
            or DeltaLimits.PayloadFileName or VersionManifest.FileName or "blobs")).ToList();
        if (foreign.Count > 0)
            throw new UsageException($"--out '{outDir}' holds more than a patch ({string.Join(", ", foreign.Take(3))}); refusing to clear it");
        File.Delete(Path.Join(outDir, ManifestCodec.ManifestFileName));
        File.Delete(Path.Join(outDir, ManifestCodec.BinaryManifestFileName));
        File.Delete(Path.Join(outDir, DeltaLimits.PayloadFileName));
        File.Delete(Path.Join(outDir, VersionManifest.FileName));
        File.Delete(Path.Join(outDir, ManifestCodec.SignatureFileName));
        var blobs = Path.Join(outDir, "blobs");
        if (Directory.Exists(blobs)) Directory.Delete(blobs, recursive: true);
    }

    private static bool IsSameOrInside(string path, string root)
    {
        var rel = Path.GetRelativePath(root, path);
        var outside = rel == ".." || rel.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(rel);
        return !outside;
    }
}
