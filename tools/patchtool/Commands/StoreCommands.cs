using System.CommandLine;
using Patching;
using Patching.Store;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool publish --store DIR --tree DIR --product P --version V --key KEY [--channel C] [--channel-days N] [--delta-from V] [--level N] [--json]</c>:
/// adds a version to a release store (pieces shared with the versions already there, each a zstd frame), optionally a
/// format 2 delta from an older published version, and points the channel at it.
/// </summary>
internal sealed class PublishCommand : IToolCommand
{
    private readonly Option<string> _store = new("--store") { Description = "The release store directory (created if missing)", HelpName = "DIR", Required = true };
    private readonly Option<string> _tree = new("--tree") { Description = "The version's complete tree", HelpName = "DIR", Required = true };
    private readonly Option<string> _product = new("--product") { Description = "Product name", Required = true };
    private readonly Option<string> _version = new("--version") { Description = "The version published", Required = true };
    private readonly Option<string> _key = new("--key") { Description = "Private key file (signing.key) signing the manifest and the channel pointer", HelpName = "KEY", Required = true };
    private readonly Option<string?> _channel = new("--channel") { Description = "Channel to point at this version (none: only add the version)" };
    private readonly Option<int> _days = new("--channel-days") { Description = "Days the channel pointer is believed (republish before then)", DefaultValueFactory = _ => 30 };
    private readonly Option<string?> _deltaFrom = new("--delta-from") { Description = "Also store a format 2 delta from this published version (used by installs of it when cheaper than the pieces)", HelpName = "V" };
    private readonly Option<int> _level = new("--level") { Description = "zstd level of the pieces and the delta (1-22)", HelpName = "N", DefaultValueFactory = _ => Patching.Building.PatchBuilder.DefaultLevel };
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("publish", "Add a version to a release store that a static web server can serve") { _store, _tree, _product, _version, _key, _channel, _days, _deltaFrom, _level, _json };
        command.SetAction((pr, ct) => Task.FromResult(CommandRunner.Run(ctx, ToolOptions.Flag(pr, _json), ToolOptions.Flag(pr, global.Verbose), () =>
        {
            var keyPath = pr.GetValue(_key)!;
            if (!File.Exists(keyPath)) throw new UsageException($"--key '{keyPath}': no such file");
            if (pr.GetValue(_days) < 1) throw new UsageException("--channel-days must be at least 1");
            if (pr.GetValue(_level) is < 1 or > 22) throw new UsageException("--level must be between 1 and 22");
            var result = ReleaseStore.Publish(new PublishRequest
            {
                StoreDir = Path.GetFullPath(pr.GetValue(_store)!), TreeDir = ToolOptions.RequireDirectory(pr.GetValue(_tree)!, "--tree"),
                Product = pr.GetValue(_product)!, Version = pr.GetValue(_version)!, PrivateKeyPem = File.ReadAllText(keyPath),
                Channel = pr.GetValue(_channel), ChannelLifetime = TimeSpan.FromDays(pr.GetValue(_days)),
                DeltaFrom = pr.GetValue(_deltaFrom), Level = pr.GetValue(_level),
            }, ct);
            if (ToolOptions.Flag(pr, _json))
            {
                JsonOutput.Write(ctx.Out, new PublishDocument(true, pr.GetValue(_version)!, pr.GetValue(_channel), result.ManifestSha256, result.Pieces, result.PiecesAdded, result.BytesAdded, result.TotalBytes, result.StoredBytes, result.DeltaBytes));
                return ExitCodes.Ok;
            }

            ctx.Out.WriteLine($"published    {pr.GetValue(_product)} {pr.GetValue(_version)}{(pr.GetValue(_channel) is { } c ? $" on channel {c}" : "")}");
            ctx.Out.WriteLine($"pieces       {result.Pieces} ({ToolOptions.Bytes(result.TotalBytes)}, {ToolOptions.Bytes(result.StoredBytes)} compressed), {result.PiecesAdded} new ({ToolOptions.Bytes(result.BytesAdded)})");
            if (result.DeltaBytes is { } delta) ctx.Out.WriteLine($"delta        from {pr.GetValue(_deltaFrom)}: {ToolOptions.Bytes(delta)}");
            ctx.Out.WriteLine($"manifest     {result.ManifestSha256}");
            return ExitCodes.Ok;
        })));
        return command;
    }
}

/// <summary>What <c>check</c> and <c>update</c> share: the source, the install, the trusted keys, the channel.</summary>
internal abstract class SourceCommand(string name, string description) : IToolCommand
{
    private readonly Option<string> _source = new("--source") { Description = "The release store: an http(s) URL or a directory", HelpName = "URL|DIR", Required = true };
    private readonly Option<string> _target = ToolOptions.Target("The install directory");
    private readonly Option<string[]> _trust = ToolOptions.Trust(required: true);
    private readonly Option<string> _channel = new("--channel") { Description = "The channel followed", DefaultValueFactory = _ => "stable" };
    private readonly Option<int> _connections = new("--connections") { Description = "Pieces downloaded at once (HTTP connections)", HelpName = "N", DefaultValueFactory = _ => 4 };
    private readonly Option<long> _limitRate = new("--limit-rate") { Description = "Largest download rate over HTTP, in bytes per second (0: no limit)", HelpName = "BYTES", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command(name, description) { _source, _target, _trust, _channel, _connections, _limitRate, _stateDir, _json };
        foreach (var option in ExtraOptions) command.Options.Add(option);
        command.SetAction((pr, ct) =>
        {
            var json = ToolOptions.Flag(pr, _json);
            var verbose = ToolOptions.Flag(pr, global.Verbose);
            return CommandRunner.RunAsync(ctx, json, verbose, async () =>
            {
                using var loggers = ToolLogging.Create(verbose);
                var connections = pr.GetValue(_connections);
                if (connections is < 1 or > 64) throw new UsageException("--connections must be between 1 and 64");
                if (pr.GetValue(_limitRate) < 0) throw new UsageException("--limit-rate must be 0 (no limit) or more");
                var options = new UpdateOptions
                {
                    Apply = EngineOptions.Create(loggers, pr.GetValue(_stateDir)) with { TrustedKeys = ToolOptions.ReadKeyFiles(pr.GetValue(_trust), "--trust") },
                    Channel = pr.GetValue(_channel)!,
                    MaxParallelDownloads = connections,
                };
                var text = pr.GetValue(_source)!;
                var http = Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
                if (!http && !Directory.Exists(text)) throw new UsageException($"--source '{text}' is neither an http(s) URL nor a directory");
                using var httpSource = http ? new HttpSource(uri!, new HttpSourceOptions { MaxConnections = connections, MaxBytesPerSecond = pr.GetValue(_limitRate) }) : null;
                IUpdateSource source = httpSource ?? (IUpdateSource)new DirectorySource(text);
                return await ExecuteAsync(ctx, pr, Path.GetFullPath(pr.GetValue(_target)!), source, options, json, ct).ConfigureAwait(false);
            });
        });
        return command;
    }

    /// <summary>Options only this command has.</summary>
    protected virtual IEnumerable<Option> ExtraOptions => [];

    protected abstract Task<int> ExecuteAsync(ToolContext ctx, ParseResult pr, string target, IUpdateSource source, UpdateOptions options, bool json, CancellationToken ct);
}

/// <summary><c>patchtool check --source URL|DIR --target DIR --trust PUB [--channel C] [--json]</c>: is a newer version available? Exit 0 either way.</summary>
internal sealed class CheckCommand() : SourceCommand("check", "Read the channel and tell whether a newer version is available, changing nothing")
{
    protected override async Task<int> ExecuteAsync(ToolContext ctx, ParseResult pr, string target, IUpdateSource source, UpdateOptions options, bool json, CancellationToken ct)
    {
        var check = await Patcher.CheckForUpdateAsync(target, source, options, ct).ConfigureAwait(false);
        if (json) JsonOutput.Write(ctx.Out, new CheckDocument(true, check.InstalledVersion, check.LatestVersion, check.UpdateAvailable, check.ChannelExpires));
        else ctx.Out.WriteLine(check.UpdateAvailable
            ? $"update available: {check.InstalledVersion ?? "(nothing installed)"} -> {check.LatestVersion}"
            : $"up to date: {check.LatestVersion}");
        return ExitCodes.Ok;
    }
}

/// <summary><c>patchtool update --source URL|DIR --target DIR --trust PUB [--channel C] [--json]</c>: move the install to the channel's latest version.</summary>
internal sealed class UpdateCommand() : SourceCommand("update", "Download what the install lacks of the channel's latest version and commit it")
{
    protected override async Task<int> ExecuteAsync(ToolContext ctx, ParseResult pr, string target, IUpdateSource source, UpdateOptions options, bool json, CancellationToken ct)
    {
        var result = await UpdateProgressBars.With(ctx, json, progress => Patcher.UpdateAsync(target, source, options, progress, ct)).ConfigureAwait(false);
        if (json)
        {
            JsonOutput.Write(ctx.Out, new UpdateDocument(result.Status != UpdateStatus.Busy, result.Status.ToString().ToLowerInvariant(), result.FromVersion, result.ToVersion,
                result.BytesDownloaded, result.BytesReused, result.PiecesDownloaded, result.PiecesReused, result.DeltaFrom));
        }
        else
        {
            ctx.Out.WriteLine(result.Status switch
            {
                UpdateStatus.UpToDate => $"up to date: {result.ToVersion}",
                UpdateStatus.Busy => "busy: another process is patching this install; the downloads are kept, try again later",
                _ when result.DeltaFrom is not null => $"updated {result.FromVersion} -> {result.ToVersion}: downloaded {ToolOptions.Bytes(result.BytesDownloaded)} (the delta from {result.DeltaFrom})",
                _ => $"updated {result.FromVersion ?? "(nothing)"} -> {result.ToVersion}: downloaded {ToolOptions.Bytes(result.BytesDownloaded)} in {result.PiecesDownloaded} pieces, reused {ToolOptions.Bytes(result.BytesReused)}",
            });
        }

        return result.Status == UpdateStatus.Busy ? ExitCodes.Busy : ExitCodes.Ok;
    }
}

/// <summary><c>patchtool repair --source URL|DIR --target DIR --trust PUB [--full] [--json]</c>: put back missing or modified files of the installed version.</summary>
internal sealed class RepairCommand() : SourceCommand("repair", "Check the installed version's files (sizes, or SHA-256 with --full) and put back the missing or modified ones from the store")
{
    private readonly Option<bool> _full = new("--full") { Description = "Hash every file (SHA-256), finding a changed byte that keeps the size; default: compare sizes with the journal's" };

    protected override IEnumerable<Option> ExtraOptions => [_full];

    protected override async Task<int> ExecuteAsync(ToolContext ctx, ParseResult pr, string target, IUpdateSource source, UpdateOptions options, bool json, CancellationToken ct)
    {
        var repairOptions = options with { FullRepair = ToolOptions.Flag(pr, _full) };
        var result = await UpdateProgressBars.With(ctx, json, progress => Patcher.RepairAsync(target, source, repairOptions, progress, ct)).ConfigureAwait(false);
        if (json)
        {
            JsonOutput.Write(ctx.Out, new RepairDocument(true, result.Version, result.Repaired, result.Missing, result.Modified, result.BytesDownloaded, result.PiecesDownloaded));
        }
        else
        {
            ctx.Out.WriteLine(result.Repaired
                ? $"repaired {result.Version}: {result.Missing.Count} missing and {result.Modified.Count} modified file(s) put back, downloaded {ToolOptions.Bytes(result.BytesDownloaded)}"
                : $"intact: every file of {result.Version} matches");
        }

        return ExitCodes.Ok;
    }
}

internal sealed record RepairDocument(bool Ok, string Version, bool Repaired, IReadOnlyList<string> Missing, IReadOnlyList<string> Modified, long BytesDownloaded, int PiecesDownloaded);

internal sealed record PublishDocument(bool Ok, string Version, string? Channel, string ManifestSha256, int Pieces, int PiecesAdded, long BytesAdded, long TotalBytes,
    long StoredBytes, long? DeltaBytes);

internal sealed record CheckDocument(bool Ok, string? InstalledVersion, string LatestVersion, bool UpdateAvailable, DateTimeOffset ChannelExpires);

internal sealed record UpdateDocument(bool Ok, string Status, string? FromVersion, string ToVersion, long BytesDownloaded, long BytesReused, int PiecesDownloaded, int PiecesReused,
    string? DeltaFrom);
