using System.CommandLine;
using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool apply --patch PATCHDIR --target DIR --trust PUB [...]</c>: a thin wrapper over
/// <see cref="Patcher.ApplyAsync"/>, with a progress bar at a terminal and plain lines otherwise.
/// </summary>
internal sealed class ApplyCommand : IToolCommand
{
    private readonly Option<string> _patch = ToolOptions.Patch();
    private readonly Option<string> _target = ToolOptions.Target("The install directory to patch");
    private readonly Option<string[]> _trust = ToolOptions.Trust(required: true);
    private readonly Option<int> _threshold = ToolOptions.Threshold();
    private readonly Option<string> _strategy = new Option<string>("--strategy")
    {
        Description = "auto: directory swap where possible, layered otherwise; swap; layered (file by file)",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "swap", "layered");

    private readonly Option<bool> _allowDowngrade = new("--allow-downgrade") { Description = "Install even if the patch is not newer than the installed version" };
    // Named as the PatcherOptions properties they set; the short aliases are accepted too, for scripts that use them.
    private readonly Option<bool> _fullBaseHash = new("--verify-base-hashes", "--full-base-hash") { Description = "Hash every base file before staging (default: compare sizes, hash while staging)" };
    private readonly Option<bool> _keepPrevious = new("--keep-previous-version", "--keep-previous") { Description = "Keep the old version so 'patchtool rollback' can restore it" };
    private readonly Option<bool> _linkBlobs = new("--link-patch-blobs", "--link-blobs")
    {
        Description = "Hard-link the patch's uncompressed blobs into the install instead of copying them (same volume, Linux); delete the patch afterwards",
    };

    private readonly Option<string> _runningPrograms = new Option<string>("--running-programs")
    {
        Description = "When programs use the install: ignore; refuse (exit naming them); wait (then refuse); layered (replace files in place)",
        DefaultValueFactory = _ => "ignore",
    }.AcceptOnlyFromAmong("ignore", "refuse", "wait", "layered");

    private readonly Option<int> _waitSeconds = new("--wait-seconds")
    {
        Description = "How long --running-programs wait waits for them to exit",
        DefaultValueFactory = _ => 60,
    };

    private readonly Option<string?> _stateDir = ToolOptions.StateDir();
    private readonly Option<bool> _json = ToolOptions.Json();

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("apply", "Apply a patch to an install, transactionally (the install ends as the old or the new version, never a mix)")
        {
            _patch, _target, _trust, _threshold, _strategy, _allowDowngrade, _fullBaseHash, _keepPrevious, _linkBlobs, _runningPrograms, _waitSeconds, _stateDir, _json,
        };
        command.SetAction((pr, ct) =>
        {
            var verbose = ToolOptions.Flag(pr, global.Verbose);
            var settings = new Settings(pr.GetValue(_patch)!, pr.GetValue(_target)!, pr.GetValue(_trust) ?? [], pr.GetValue(_threshold),
                ParseStrategy(pr.GetValue(_strategy)), ToolOptions.Flag(pr, _allowDowngrade), ToolOptions.Flag(pr, _fullBaseHash), ToolOptions.Flag(pr, _keepPrevious),
                ToolOptions.Flag(pr, _linkBlobs), pr.GetValue(_stateDir), ToolOptions.Flag(pr, _json), verbose)
            {
                RunningPrograms = ParseRunningPrograms(pr.GetValue(_runningPrograms)),
                RunningProgramsWait = WaitSeconds(pr.GetValue(_waitSeconds)),
            };
            return CommandRunner.RunAsync(ctx, settings.Json, verbose, () => RunAsync(ctx, settings, ct));
        });
        return command;
    }

    internal sealed record Settings(
        string Patch, string Target, IReadOnlyList<string> Trust, int Threshold, CommitStrategy Strategy,
        bool AllowDowngrade, bool FullBaseHash, bool KeepPrevious, bool LinkBlobs, string? StateDir, bool Json, bool Verbose)
    {
        public RunningProgramPolicy RunningPrograms { get; init; }

        public TimeSpan RunningProgramsWait { get; init; } = TimeSpan.FromSeconds(60);
    }

    internal static RunningProgramPolicy ParseRunningPrograms(string? value) => value switch
    {
        null or "ignore" => RunningProgramPolicy.Ignore,
        "refuse" => RunningProgramPolicy.Refuse,
        "wait" => RunningProgramPolicy.Wait,
        "layered" => RunningProgramPolicy.UseLayered,
        _ => throw new UsageException($"--running-programs '{value}' is not one of ignore, refuse, wait, layered"),
    };

    private static TimeSpan WaitSeconds(int seconds) =>
        seconds is >= 0 and <= 86_400 ? TimeSpan.FromSeconds(seconds) : throw new UsageException($"--wait-seconds {seconds} is not between 0 and 86400");

    internal static CommitStrategy ParseStrategy(string? value) => value switch
    {
        null or "auto" => CommitStrategy.Auto,
        "swap" => CommitStrategy.Swap,
        "layered" => CommitStrategy.Layered,
        _ => throw new UsageException($"--strategy '{value}' is not one of auto, swap, layered"),
    };

    internal static async Task<int> RunAsync(ToolContext ctx, Settings s, CancellationToken ct)
    {
        // Said first, before keys are read or the library is loaded: a person who pressed Enter sees at once that it runs.
        if (!s.Json) ctx.Out.WriteLine($"applying {Path.GetFullPath(s.Patch)} to {Path.GetFullPath(s.Target)}");
        var pems = ToolOptions.ReadKeyFiles(s.Trust, "--trust");
        ToolOptions.CheckThreshold(s.Threshold, pems.Count);
        using var loggers = ToolLogging.Create(s.Verbose);
        var options = EngineOptions.Create(loggers, s.StateDir) with
        {
            TrustedKeys = pems,
            SignatureThreshold = s.Threshold,
            Strategy = s.Strategy,
            AllowDowngrade = s.AllowDowngrade,
            VerifyBaseHashes = s.FullBaseHash,
            KeepPreviousVersion = s.KeepPrevious,
            LinkPatchBlobs = s.LinkBlobs,
            RunningPrograms = s.RunningPrograms,
            RunningProgramsWait = s.RunningProgramsWait,
        };
        var target = Path.GetFullPath(s.Target);
        var patch = Path.GetFullPath(s.Patch);

        ApplyResult result;
        if (ctx.IsTerminal && !s.Json)
            result = await SpectreProgress.Run(progress => Patcher.ApplyAsync(target, patch, options, progress, ct)).ConfigureAwait(false);
        else
            result = await Patcher.ApplyAsync(target, patch, options, s.Json ? null : new PlainProgress(ctx.Out), ct).ConfigureAwait(false);

        var busy = result.Status == ApplyStatus.Busy;
        if (s.Json) JsonOutput.Write(ctx.Out, Document(result, target));
        else if (!busy)
        {
            ctx.Out.WriteLine($"applied {result.FromVersion ?? "(unknown)"} -> {result.ToVersion} in {target}");
            ctx.Out.WriteLine($"  strategy     {result.Strategy}{(result.Resumed ? " (resumed an interrupted staging)" : "")}");
            ctx.Out.WriteLine($"  transaction  {result.TransactionId}");
            ctx.Out.WriteLine($"  files        {result.FilesWritten} written, {result.FilesReused} reused from the old version");
            ctx.Out.WriteLine($"  bytes        {ToolOptions.Bytes(result.BytesWritten)} written ({result.BytesWritten} bytes)");
        }

        // The library deletes the old version's files in the background; a process that exits now would leave them
        // for the next apply or recover. The new version is in place already, so this only delays the exit.
        await result.Cleanup.ConfigureAwait(false);
        if (!busy) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(PatchErrorCode.Busy, BusyError(target).Message, null));
        return ExitCodes.Busy;
    }

    /// <summary>Another process holds the install's lock: the failure apply and rollback report when busy.</summary>
    internal static ErrorInfo BusyError(string target) =>
        new((int)PatchErrorCode.Busy, nameof(PatchErrorCode.Busy), $"another process is patching '{target}'; nothing was changed, try again later", target);

    /// <summary>The <c>--json</c> document of an apply or a rollback, with the error object when it was busy.</summary>
    internal static ApplyDocument Document(ApplyResult r, string target) =>
        new(r.Status != ApplyStatus.Busy, r.Status.ToString(), r.FromVersion, r.ToVersion, r.TransactionId, r.Strategy.ToString(), r.Resumed,
            r.FilesWritten, r.FilesReused, r.BytesWritten) { Error = r.Status == ApplyStatus.Busy ? BusyError(target) : null };
}
