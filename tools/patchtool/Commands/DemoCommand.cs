using System.CommandLine;
using Patching;
using Patching.Manifests;
using Patching.Signing;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool demo [--work DIR]</c>: the whole story on the built-in sample game, printing each step:
/// keygen, build v1→v2 signed, verify, inspect, a tampered copy refused, then a launcher's Recover + Apply on
/// an install holding a user's save, the before/after hash listings, and status.
/// </summary>
internal sealed class DemoCommand : IToolCommand
{
    public const string Product = "sample-game";
    public const string FromVersion = "1.0.0";
    public const string ToVersion = "1.1.0";
    public const string UserFile = "saves/slot1.sav";
    public const string UserFileContent = "slot 1: level 2, 3 lives, 1250 points\n";

    private readonly Option<string?> _work = new("--work")
    {
        Description = "Work directory to use and keep (new or empty); default: a temporary directory removed afterwards",
        HelpName = "DIR",
    };

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("demo", "Walk through keygen, build, verify, inspect and apply on the built-in sample game") { _work };
        command.SetAction((pr, ct) =>
        {
            var s = new Settings(pr.GetValue(_work), ToolOptions.Flag(pr, global.Verbose));
            return CommandRunner.RunAsync(ctx, json: false, s.Verbose, () => RunAsync(ctx, s, ct));
        });
        return command;
    }

    internal sealed record Settings(string? Work, bool Verbose);

    internal static async Task<int> RunAsync(ToolContext ctx, Settings s, CancellationToken ct)
    {
        var keep = s.Work is not null;
        var work = Path.GetFullPath(s.Work ?? Path.Join(Path.GetTempPath(), $"patchtool-demo-{Guid.NewGuid():N}"));
        if (Directory.Exists(work) && Directory.EnumerateFileSystemEntries(work).Any())
            throw new UsageException($"--work '{work}' is not empty; give a new or empty directory");
        var sample = SampleData.Locate();
        Directory.CreateDirectory(work);
        try
        {
            return await new Tour(ctx, work, sample, s.Verbose, ct).RunAsync().ConfigureAwait(false);
        }
        finally
        {
            if (keep)
            {
                ctx.Out.WriteLine($"work directory kept: {work}");
            }
            else
            {
                try
                {
                    Directory.Delete(work, recursive: true);
                }
                catch (IOException ex)
                {
                    ctx.Err.WriteLine($"patchtool: warning: could not remove {work}: {ex.Message}");
                }
            }
        }
    }

    private sealed class Tour
    {
        private readonly ToolContext _ctx;
        private readonly string _work;
        private readonly string _sample;
        private readonly bool _verbose;
        private readonly CancellationToken _ct;
        private int _step;

        public Tour(ToolContext ctx, string work, string sample, bool verbose, CancellationToken ct)
        {
            (_ctx, _work, _sample, _verbose, _ct) = (ctx, work, sample, verbose, ct);
        }

        private TextWriter Out => _ctx.Out;

        private string W(string name) => Path.Join(_work, name);

        public async Task<int> RunAsync()
        {
            Out.WriteLine("patchtool demo: the sample game goes from 1.0.0 to 1.1.0");
            Out.WriteLine($"  sample data     {_sample}");
            Out.WriteLine($"  work directory  {_work}");
            SampleData.CopyVersion(_sample, "v1", W("v1"));
            SampleData.CopyVersion(_sample, "v2", W("v2"));
            Out.WriteLine("  copied the sample trees to v1/ (1.0.0) and v2/ (1.1.0)");

            var pub = Path.Join(W("keys"), SigningKeys.PublicKeyFileName);
            if (!await PublishAsync(pub).ConfigureAwait(false)) return ExitCodes.Unexpected;

            Heading($"player: an install of 1.0.0, plus the player's own file {UserFile}");
            var install = W("install");
            SampleData.CopyVersion(_sample, "v1", install);
            Directory.CreateDirectory(Path.Join(install, "saves"));
            await File.WriteAllTextAsync(Path.Join(install, UserFile), UserFileContent, _ct).ConfigureAwait(false);
            var before = TreeListing.Of(install);
            Out.WriteLine("  hash listing before:");
            foreach (var (path, value) in before) Out.WriteLine($"    {path,-26} {TreeListing.Short(value)}".TrimEnd());
            if (!await Cli(0, "verify", "--patch", W("patch"), "--trust", pub, "--target", install).ConfigureAwait(false))
                return ExitCodes.Unexpected;

            var applied = await LauncherApplyAsync(install, pub).ConfigureAwait(false);
            if (applied != ExitCodes.Ok) return applied;
            if (!ShowResult(before, install)) return ExitCodes.Unexpected;

            Heading("the install now");
            if (!await Cli(0, "status", "--target", install).ConfigureAwait(false)) return ExitCodes.Unexpected;
            if (!await Cli(0, "verify-install", "--target", install).ConfigureAwait(false)) return ExitCodes.Unexpected;

            Out.WriteLine();
            Out.WriteLine("demo complete: built, signed, verified, refused a tampered copy, and patched an install keeping the player's save.");
            return ExitCodes.Ok;
        }

        /// <summary>The publisher's steps: a key pair, the signed patch, its checks, and a tampered copy refused.</summary>
        private async Task<bool> PublishAsync(string pub)
        {
            var key = Path.Join(W("keys"), SigningKeys.PrivateKeyFileName);
            Heading("publisher: make a signing key pair");
            if (!await Cli(0, "keygen", "--out", W("keys")).ConfigureAwait(false)) return false;

            Heading("publisher: build the 1.0.0 -> 1.1.0 patch, signed");
            if (!await Cli(0, "build", "--from", W("v1"), "--to", W("v2"), "--out", W("patch"), "--key", key,
                    "--product", Product, "--version", ToVersion, "--from-version", FromVersion).ConfigureAwait(false))
                return false;

            Heading("publisher: verify the signature and every blob");
            if (!await Cli(0, "verify", "--patch", W("patch"), "--trust", pub).ConfigureAwait(false)) return false;

            Heading("publisher: inspect what the patch changes");
            if (!await Cli(0, "inspect", "--patch", W("patch")).ConfigureAwait(false)) return false;

            Heading("attacker: change one byte of a copy's manifest; verify must refuse it (exit 3)");
            SampleData.CopyTree(W("patch"), W("patch-tampered"));
            TamperManifest(ManifestCodec.Find(W("patch-tampered"))!);
            return await Cli(ExitCodes.PatchRefused, "verify", "--patch", W("patch-tampered"), "--trust", pub).ConfigureAwait(false);
        }

        /// <summary>What a launcher does, through the library itself: Recover, then Apply. Returns the exit code.</summary>
        private async Task<int> LauncherApplyAsync(string install, string pub)
        {
            Heading("launcher: Patcher.Recover, then Patcher.Apply");
            Out.WriteLine("  var options = new PatcherOptions { TrustedKeys = [File.ReadAllText(\"signing.pub\")] };");
            Out.WriteLine("  Patcher.Recover(installDir, options);");
            Out.WriteLine("  var result = Patcher.Apply(installDir, patchDir, options);");
            using var loggers = ToolLogging.Create(_verbose);
            var options = EngineOptions.Create(loggers, null) with { TrustedKeys = [await File.ReadAllTextAsync(pub, _ct).ConfigureAwait(false)] };
            ApplyResult result;
            try
            {
                var recovery = Patcher.Recover(install, options);
                recovery.Cleanup.GetAwaiter().GetResult();
                Out.WriteLine($"  Recover -> {recovery.Outcome}");
                result = Patcher.Apply(install, W("patch"), options);
                result.Cleanup.GetAwaiter().GetResult(); // the old version's files, deleted in the background
            }
            catch (PatcherException ex)
            {
                _ctx.Err.WriteLine(CommandRunner.ErrorLine(ex.Code, ex.Message, ex.Path));
                Out.WriteLine($"  demo FAILED: Patcher.Apply refused or failed with {ex.Code}");
                return ExitCodes.For(ex.Code);
            }

            Out.WriteLine($"  Apply -> {result.Status}: {result.FromVersion ?? "(unknown)"} -> {result.ToVersion} by {result.Strategy}, " +
                          $"{result.FilesWritten} files written, {result.FilesReused} reused, {result.BytesWritten} bytes");
            return ExitCodes.Ok;
        }

        /// <summary>Prints what the apply changed and checks the install is exactly 1.1.0 plus the player's file.</summary>
        private bool ShowResult(SortedDictionary<string, string> before, string install)
        {
            Heading("result: the install's hash listing, before -> after");
            var after = TreeListing.Of(install);
            var diff = TreeListing.Diff(before, after);
            foreach (var line in diff) Out.WriteLine($"    {line}");
            Out.WriteLine($"  ({before.Count(kv => after.TryGetValue(kv.Key, out var v) && v == kv.Value)} entries unchanged)");

            var expected = TreeListing.Of(W("v2"));
            expected["saves/"] = "dir";
            expected[UserFile] = before[UserFile];
            var differences = TreeListing.Diff(expected, after);
            if (differences.Count == 0)
            {
                Out.WriteLine($"  check: the install is exactly 1.1.0 plus the player's {UserFile}: OK");
                return true;
            }

            Out.WriteLine("  check: the install is NOT exactly 1.1.0 plus the player's file:");
            foreach (var line in differences) Out.WriteLine($"      {line}");
            return false;
        }

        private void Heading(string text)
        {
            Out.WriteLine();
            Out.WriteLine($"== {++_step}. {text}");
        }

        /// <summary>Runs a patchtool command in-process, echoing it; false (with a message) when its exit code is not the expected one.</summary>
        private async Task<bool> Cli(int expectedExit, params string[] args)
        {
            var shown = string.Join(' ', args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a))
                .Replace(_work + Path.DirectorySeparatorChar, "", StringComparison.Ordinal);
            Out.WriteLine($"$ patchtool {shown}");
            // The step's error line goes to stdout too, so it reads in place (a refusal is part of the story).
            var exit = await PatchToolProgram.RunAsync(_verbose ? [.. args, "--verbose"] : args, Out, Out, _ct).ConfigureAwait(false);
            Out.WriteLine($"  (exit code {exit}{(exit == expectedExit ? "" : $", expected {expectedExit}")})");
            if (exit == expectedExit) return true;
            _ctx.Err.WriteLine($"patchtool: demo step 'patchtool {args[0]}' exited {exit}, expected {expectedExit}");
            return false;
        }

        /// <summary>
        /// Changes one digit of the first file hash (JSON) or one bit of the last hash byte (MessagePack): still a
        /// well-formed manifest, so only the signature catches it.
        /// </summary>
        private static void TamperManifest(string path)
        {
            var bytes = File.ReadAllBytes(path);
            if (path.EndsWith(ManifestCodec.ManifestFileName, StringComparison.Ordinal))
            {
                var marker = "\"sha256\": \""u8;
                var at = bytes.AsSpan().IndexOf(marker) + marker.Length;
                bytes[at] = bytes[at] == (byte)'0' ? (byte)'1' : (byte)'0';
            }
            else
            {
                bytes[^1] ^= 1;
            }

            File.WriteAllBytes(path, bytes);
        }
    }
}
