using Patching;

namespace PatcherSample;

/// <summary>
/// A console launcher: <c>Launcher INSTALL_DIR PATCH_DIR TRUSTED_KEY_FILE</c>. It recovers the install, reads the
/// patch, applies it with a progress bar (Ctrl-C cancels before the commit), and prints one message. Exit codes:
/// 0 updated or up to date, 2 usage, 3 patch refused, 4 install problem, 5 busy, 130 cancelled.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 3)
        {
            await Console.Error.WriteLineAsync("usage: Launcher INSTALL_DIR PATCH_DIR TRUSTED_KEY_FILE");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // Ask the apply to stop instead of killing the process: it then undoes what it staged.
            e.Cancel = true;
            cancel.Cancel();
        };
        var progress = new ConsoleProgressBar(Console.Out, interactive: !Console.IsOutputRedirected);
        var (message, exitCode) = await UpdateAsync(args[0], args[1], await File.ReadAllTextAsync(args[2]), progress, Console.Out, cancel.Token);
        Console.WriteLine(message);
        return exitCode;
    }

    /// <summary>The launcher's update steps; returns the message to show and the process exit code.</summary>
    public static async Task<(string Message, int ExitCode)> UpdateAsync(string installDir, string patchDir, string trustedKeyPem,
        IProgress<PatchProgress> progress, TextWriter output, CancellationToken cancellationToken)
    {
        // README:begin
        var options = new PatcherOptions { TrustedKeys = [trustedKeyPem] };
        try
        {
            // At start: finish or undo an update a crash interrupted (one file check when there is none).
            if (Patcher.Recover(installDir, options).Outcome == RecoveryOutcome.Busy)
                return ("another launcher is updating this game; try again later", 5);

            // Check what the patch is before anything changes (verified against the trusted key).
            var info = Patcher.ReadPatchInfo(patchDir, options);
            var installed = Patcher.Status(installDir, options).InstalledVersion;
            if (installed == info.Version) return ($"{info.Product} {info.Version} is up to date", 0);
            output.WriteLine($"updating {info.Product} {installed ?? info.FromVersion ?? "(new install)"} -> {info.Version}, " +
                $"{info.FilesAdded.Count + info.FilesChanged.Count} files, {info.DownloadBytes / 1e6:0.0} MB");

            var result = await Patcher.ApplyAsync(installDir, patchDir, options, progress, cancellationToken);
            if (result.Status == ApplyStatus.Busy) return ("another launcher is updating this game; try again later", 5);
            await result.Cleanup;   // the old version's files are deleted in the background; let that finish
            return ($"updated {result.FromVersion} -> {result.ToVersion}", 0);
        }
        catch (OperationCanceledException)
        {
            return ("update cancelled; the old version is intact", 130);
        }
        catch (PatcherException ex) when (ex.NewVersionInPlace)
        {
            // Only bookkeeping failed after the switch: start the new version; the next Recover finishes the cleanup.
            return ($"updated to {Patcher.Status(installDir, options).InstalledVersion ?? "the new version"} ({ex.Message})", 0);
        }
        catch (PatcherException ex)   // the old version is intact; ex.Code is stable
        {
            return (ErrorMessages.For(ex), ex.Code < PatchErrorCode.InstallNotFound ? 3 : 4);
        }
        // README:end
    }
}
