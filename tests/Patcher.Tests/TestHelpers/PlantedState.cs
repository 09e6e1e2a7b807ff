using System.Diagnostics;
using Patching.Building;
using Patching.Signing;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// Another party's update left half-done beside a player's install: their own full package (version 9.0, a different
/// game.exe) signed by their own key, applied in a child process killed at the directory exchange, so a transaction
/// in backup-complete, its complete staged tree and the pending marker remain in the state directory.
/// </summary>
internal static class PlantedState
{
    public const string Version = "9.0.0";
    public const string Program = "attacker's program";

    /// <param name="s">The player's scenario, installed (the install has no state directory yet).</param>
    /// <param name="afterExchange">Kill just after the exchange instead of just before it.</param>
    public static void Plant(PatchScenario s, bool afterExchange)
    {
        var evil = s.Dir("evil-tree");
        PatchScenario.Write(evil, "game.exe", Program, executable: true);
        PatchScenario.Write(evil, "data/level1.pak", "x");
        var (privateKey, publicKey) = SigningKeys.Generate();
        var package = Path.Join(s.Root, "evil-patch");
        PatchBuilder.Build(new BuildRequest { ToDir = evil, OutDir = package, Product = "demo-game", Version = Version, PrivateKeyPem = privateKey });
        var trust = Path.Join(s.Root, "evil.pub");
        File.WriteAllText(trust, publicKey);

        // A dry run on a copy numbers the crash points; the real run is killed at the exchange's.
        var copy = Path.Join(s.Dir("dry"), "game");
        PatchScenario.CopyTree(s.InstallDir, copy);
        var log = Path.Join(s.Root, "points.log");
        var dry = CrashHost.Start(["apply", copy, package, trust, "swap"], crashLog: log);
        Assert.That(dry.ExitCode, Is.EqualTo(0), dry.StdErr);
        var exchange = Array.FindIndex(File.ReadAllLines(log), l => l.Contains("exchange", StringComparison.Ordinal)) + 1;
        Assert.That(exchange, Is.GreaterThan(0), "no exchange crash point");
        var run = CrashHost.Start(["apply", s.InstallDir, package, trust, "swap"], crashAt: afterExchange ? exchange + 1 : exchange);
        Assert.That(run.Killed, Is.True, run.StdErr);
        Assert.That(File.Exists(Path.Join(StateDir(s), "pending")), Is.True, "the planted transaction is pending");
    }

    public static string StateDir(PatchScenario s) => Path.Join(s.ParentDir, ".game.patcher");

    /// <summary>Runs a command as root and asserts it succeeded.</summary>
    public static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), $"{file} {string.Join(' ', args)}: {err}");
    }

    public static bool IsRoot => OperatingSystem.IsLinux() && Patching.IO.Interop.Libc.geteuid() == 0;
}
