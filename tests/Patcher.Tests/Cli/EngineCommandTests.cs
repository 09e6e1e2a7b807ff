using System.Globalization;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Cli;

/// <summary>apply, status, recover, rollback and verify-install: thin wrappers over the public facade.</summary>
public sealed class EngineCommandTests
{
    private TempDir _temp = null!;
    private string _patch = null!;
    private string _install = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = TempDir.ForCurrentTest();
        _patch = SamplePatch.Build(_temp);
        _install = SamplePatch.Install(_temp);
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    /// <summary>Runs patchtool and checks its exit code.</summary>
    private static CliResult Run(int expectedExit, params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(expectedExit), () => $"patchtool {string.Join(' ', args)}\n{result}");
        return result;
    }

    private IReadOnlyList<string> ExpectedAfter(string version)
    {
        var lines = HashListing.Of(_temp[version]).ToList();
        lines.AddRange(HashListing.Of(_install).Where(l => l.StartsWith("saves/", StringComparison.Ordinal)));
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private string[] Apply(params string[] extra) => ["apply", "--patch", _patch, "--target", _install, "--trust", RepoPaths.TestPub, .. extra];

    [Test]
    public void Apply_SamplePatchWithJson_InstallIsExactlyV2PlusUserFile()
    {
        var expected = ExpectedAfter("v2");

        var json = Run(0, Apply("--json")).Json();

        Assert.That(json.GetProperty("ok").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("status").GetString(), Is.EqualTo("Applied"));
        Assert.That(json.GetProperty("fromVersion").GetString(), Is.EqualTo("1.0.0"));
        Assert.That(json.GetProperty("toVersion").GetString(), Is.EqualTo("1.1.0"));
        Assert.That(HashListing.Of(_install), Is.EqualTo(expected));
    }

    [Test]
    public void Apply_LinkBlobs_RawBlobsAreLinkedNotWritten()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("blobs are hard-linked on Linux only");
        var expected = ExpectedAfter("v2");

        var blobs = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Join(_patch, "manifest.json"))).RootElement.GetProperty("blobs")
            .EnumerateArray().Select(b => (Compression: b.GetProperty("compression").GetString(), Size: b.GetProperty("size").GetInt64())).ToList();
        Assert.That(blobs.Count(b => b.Compression == "none"), Is.GreaterThan(0), "the sample stores some blobs raw");

        var json = Run(0, Apply("--link-blobs", "--json")).Json();

        Assert.That(json.GetProperty("status").GetString(), Is.EqualTo("Applied"));
        Assert.That(json.GetProperty("bytesWritten").GetInt64(), Is.EqualTo(blobs.Where(b => b.Compression != "none").Sum(b => b.Size)),
            "only the compressed blobs are written; the raw ones are linked");
        Assert.That(HashListing.Of(_install), Is.EqualTo(expected));
    }

    [Test]
    public void Apply_NotATerminal_PrintsPlainPhaseLinesAndSummary()
    {
        var result = Run(0, Apply());

        Assert.That(result.Out, Does.Contain("[verifying]"));
        Assert.That(result.Out, Does.Contain("[staging]"));
        Assert.That(result.Out, Does.Contain("applied 1.0.0 -> 1.1.0"));
        // Ordinal: a culture-aware search ignores control characters and would find "[" alone.
        Assert.That(result.Out.Contains('\u001b', StringComparison.Ordinal), Is.False, "no ANSI escapes when stdout is not a terminal");
    }

    [TestCase("swap")]
    [TestCase("layered")]
    public void Apply_Strategy_IsPassedToTheEngine(string strategy)
    {
        if (strategy == "swap" && OperatingSystem.IsWindows()) Assert.Ignore("swap is POSIX only");
        var expected = ExpectedAfter("v2");

        var result = CliRunner.Run(Apply("--strategy", strategy, "--json"));
        if (result.ExitCode == 4 && result.Err.Contains("not available in this build", StringComparison.Ordinal))
            Assert.Ignore($"the {strategy} strategy is not in this build yet: {result.Err.Trim()}");
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString);
        var json = result.Json();

        Assert.That(json.GetProperty("strategy").GetString(), Is.EqualTo(strategy == "swap" ? "Swap" : "Layered"));
        Assert.That(HashListing.Of(_install), Is.EqualTo(expected));
    }

    [Test]
    public void Apply_TamperedManifest_ExitsRefusedAndLeavesInstallUntouched()
    {
        var before = HashListing.Of(_install);
        var path = Path.Join(_patch, ManifestCodec.ManifestFileName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"size\": 120", "\"size\": 121", StringComparison.Ordinal));

        var result = Run(3, Apply());

        Assert.That(result.Err, Does.StartWith("patchtool: error SignatureInvalid (111)"));
        Assert.That(HashListing.Of(_install), Is.EqualTo(before));
    }

    [Test]
    public void Apply_RunningProgramsRefuseWithProgramInInstall_ExitsNamingItAndLeavesInstallUntouched()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("programs are found through /proc (Linux)");
        var before = HashListing.Of(_install);
        using var program = new ProgramInInstall(_install);

        var result = CliRunner.Run(Apply("--running-programs", "refuse"));

        Assert.That(result.ExitCode, Is.EqualTo(4), result.ToString);
        Assert.That(result.Err, Does.StartWith("patchtool: error InstallInUse (222)").And.Contain(program.Id.ToString(CultureInfo.InvariantCulture)));
        Assert.That(HashListing.Of(_install), Is.EqualTo(before));
    }

    [Test]
    public void Apply_RunningProgramsUnknownValue_IsUsageError() =>
        CliRunner.Expect(2, Apply("--running-programs", "sometimes"));

    [Test]
    public void Apply_UntrustedKey_ExitsRefusedAndLeavesInstallUntouched()
    {
        var before = HashListing.Of(_install);

        var result = Run(3, "apply", "--patch", _patch, "--target", _install, "--trust", RepoPaths.TestPub2);

        Assert.That(result.Err, Does.StartWith("patchtool: error SignatureInvalid (111)"));
        Assert.That(HashListing.Of(_install), Is.EqualTo(before));
    }

    [Test]
    public void Apply_ReusedBaseFileModified_ExitsInstallProblemBaseMismatch()
    {
        File.AppendAllText(Path.Join(_install, "game.cfg"), "cheats=on\n");
        var before = HashListing.Of(_install);

        var result = Run(4, Apply("--json"));

        Assert.That(result.Err, Does.StartWith("patchtool: error BaseMismatch (201)"));
        Assert.That(result.Json().GetProperty("error").GetProperty("code").GetInt32(), Is.EqualTo(201));
        Assert.That(HashListing.Of(_install), Is.EqualTo(before));
    }

    [Test]
    public void Apply_Twice_SecondIsRefusedNotNewer()
    {
        Run(0, Apply());

        var result = Run(3, Apply());

        Assert.That(result.Err, Does.StartWith("patchtool: error NotNewer (141)"));
    }

    [Test]
    public void Apply_WhileAnotherProcessHoldsTheLock_ExitsBusyAndChangesNothing()
    {
        var state = _temp["state"];
        Directory.CreateDirectory(state);
        var before = HashListing.Of(_install);
        // The engine's lock is <state dir>/lock, an flock on Unix: another process holds it, as a running applier would.
        using var holder = LockHolder.Start(Path.Join(state, "lock"));

        var result = Run(5, Apply("--state-dir", state, "--json"));

        Assert.That(result.Err, Does.StartWith("patchtool: error Busy (204)"));
        Assert.That(result.Json().GetProperty("status").GetString(), Is.EqualTo("Busy"));
        Assert.That(result.Json().GetProperty("error").GetProperty("name").GetString(), Is.EqualTo("Busy"), "the README's one failure shape");
        Assert.That(result.Json().GetProperty("error").GetProperty("code").GetInt32(), Is.EqualTo(204));
        // (recover with nothing pending is one existence check and takes no lock, so it does not report busy)
        Assert.That(HashListing.Of(_install), Is.EqualTo(before));
        holder.Dispose();
        Run(0, Apply("--state-dir", state));
    }

    /// <summary>A child process (util-linux <c>flock</c>) that holds an exclusive lock on a file until disposed.</summary>
    private sealed class LockHolder : IDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private bool _disposed;

        private LockHolder(System.Diagnostics.Process process) => _process = process;

        public static LockHolder Start(string lockFile)
        {
            if (OperatingSystem.IsWindows()) Assert.Ignore("uses the util-linux flock command");
            var flock = new[] { "/usr/bin/flock", "/bin/flock" }.FirstOrDefault(File.Exists);
            if (flock is null) Assert.Ignore("the flock command (util-linux) is not installed");
            var ready = lockFile + ".held";
            var start = new System.Diagnostics.ProcessStartInfo(flock!) { RedirectStandardInput = true, UseShellExecute = false };
            foreach (var arg in new[] { "-x", lockFile, "sh", "-c", $"touch '{ready}'; read _" }) start.ArgumentList.Add(arg);
            var process = System.Diagnostics.Process.Start(start)!;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!File.Exists(ready))
            {
                if (DateTime.UtcNow > deadline || process.HasExited) Assert.Fail("the lock holder did not start");
                Thread.Sleep(10);
            }

            return new LockHolder(process);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _process.StandardInput.Close(); // `read` returns, the shell exits, flock releases
            if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    [Test]
    public void Apply_MissingTrust_IsUsageError()
    {
        CliRunner.Expect(2, "apply", "--patch", _patch, "--target", _install);
    }

    [Test]
    public void Status_AfterApply_JsonShowsInstalledVersion()
    {
        Run(0, Apply());

        var json = Run(0, "status", "--target", _install, "--json").Json();

        Assert.That(json.GetProperty("ok").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("product").GetString(), Is.EqualTo("sample-game"));
        Assert.That(json.GetProperty("installedVersion").GetString(), Is.EqualTo("1.1.0"));
        Assert.That(json.GetProperty("pendingTransactionId").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
    }

    [Test]
    public void Status_Text_ShowsVersionAndPending()
    {
        Run(0, Apply());

        var result = Run(0, "status", "--target", _install);

        Assert.That(result.Out, Does.Contain("version      1.1.0"));
        Assert.That(result.Out, Does.Contain("pending      none"));
    }

    [Test]
    public void Recover_NothingPending_ReportsNothingPending()
    {
        var json = Run(0, "recover", "--target", _install, "--json").Json();

        Assert.That(json.GetProperty("outcome").GetString(), Is.EqualTo("NothingPending"));
        Assert.That(Run(0, "recover", "--target", _install).Out, Does.Contain("nothing to recover"));
    }

    [Test]
    public void Recover_OldFilesLeftByAnExitedLauncher_DeletedBeforeTheCommandExits()
    {
        Run(0, Apply());
        var trash = Path.Join(Path.GetDirectoryName(_install)!, "." + Path.GetFileName(_install) + ".patcher", "trash");
        for (var i = 0; i < 50; i++) TreeFactory.WriteFile(Path.Join(trash, "20261121000000-deadbeef"), $"old/{i}.bin", new byte[100]);

        Assert.That(Run(0, "recover", "--target", _install).Out, Does.Contain("nothing to recover"));

        Assert.That(Directory.Exists(trash), Is.False, "the command waited for the background deletion");
    }

    [Test]
    public void VerifyInstall_AfterApply_IsIntact()
    {
        Run(0, Apply());

        var json = Run(0, "verify-install", "--target", _install, "--json").Json();

        Assert.That(json.GetProperty("ok").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("version").GetString(), Is.EqualTo("1.1.0"));
        Assert.That(json.GetProperty("filesChecked").GetInt32(), Is.EqualTo(7));
    }

    [Test]
    public void VerifyInstall_FileModifiedAfterApply_ExitsInstallProblemVerifyFailed()
    {
        Run(0, Apply());
        File.AppendAllText(Path.Join(_install, "readme.txt"), "edited\n");
        File.Delete(Path.Join(_install, "game.cfg"));

        var result = Run(4, "verify-install", "--target", _install, "--json");

        var json = result.Json();
        Assert.That(json.GetProperty("ok").GetBoolean(), Is.False);
        Assert.That(json.GetProperty("modified")[0].GetString(), Is.EqualTo("readme.txt"));
        Assert.That(json.GetProperty("missing")[0].GetString(), Is.EqualTo("game.cfg"));
        Assert.That(result.Err, Does.StartWith("patchtool: error VerifyFailed (212)"));
    }

    [Test]
    public void Rollback_NothingKept_ExitsInstallProblemNothingToRollBack()
    {
        Run(0, Apply());

        var result = Run(4, "rollback", "--target", _install);

        Assert.That(result.Err, Does.StartWith("patchtool: error NothingToRollBack (211)"));
    }

    [Test]
    public void Rollback_AfterApplyWithKeepPrevious_RestoresV1AndUserFile()
    {
        // An install Patcher made (full package), so the journal knows the version being replaced.
        var install = _temp[Path.Join("installs", "managed")];
        Directory.CreateDirectory(install);
        CliRunner.Expect(0, "build", "--to", _temp["v1"], "--out", _temp["full-v1"], "--key", RepoPaths.TestKey,
            "--product", SamplePatch.Product, "--version", SamplePatch.FromVersion);
        Run(0, "apply", "--patch", _temp["full-v1"], "--target", install, "--trust", RepoPaths.TestPub);
        TreeFactory.WriteFile(install, "saves/slot1.sav", "slot 1\n"u8.ToArray());
        var before = HashListing.Of(install);
        Run(0, "apply", "--patch", _patch, "--target", install, "--trust", RepoPaths.TestPub, "--keep-previous");
        Assert.That(Run(0, "status", "--target", install, "--json").Json().GetProperty("previousVersion").GetString(), Is.EqualTo("1.0.0"));

        var json = Run(0, "rollback", "--target", install, "--json").Json();

        Assert.That(json.GetProperty("toVersion").GetString(), Is.EqualTo("1.0.0"));
        Assert.That(HashListing.Of(install), Is.EqualTo(before));
        Assert.That(Run(0, "rollback", "--target", install).Out, Does.Contain("rolled back"), "the rolled-back-from version is kept in turn");
    }

    [Test]
    public void Apply_StateDirOption_KeepsStateThere()
    {
        var state = _temp["custom-state"];

        Run(0, Apply("--state-dir", state));

        Assert.That(Directory.Exists(state), Is.True);
        Assert.That(Run(0, "status", "--target", _install, "--state-dir", state, "--json").Json().GetProperty("installedVersion").GetString(),
            Is.EqualTo("1.1.0"));
    }
}
