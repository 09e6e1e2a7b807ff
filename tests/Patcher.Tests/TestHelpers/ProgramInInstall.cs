using System.Diagnostics;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// A stand-in for a running game: a real <c>sleep</c> process whose working directory is a folder of the install
/// (Linux). Ended (killed and reaped, so <c>/proc</c> no longer lists it) on dispose.
/// </summary>
internal sealed class ProgramInInstall : IDisposable
{
    private readonly Process _process;

    public ProgramInInstall(string directory) =>
        _process = Process.Start(new ProcessStartInfo("sleep", ["120"]) { WorkingDirectory = directory, UseShellExecute = false })!;

    public int Id => _process.Id;

    /// <summary>Where the program works now (after a swap: inside the old tree, wherever that was moved).</summary>
    public string? WorkingDirectory => new DirectoryInfo($"/proc/{_process.Id}/cwd").LinkTarget;

    /// <summary>Kills the program and waits until it is gone.</summary>
    public void End()
    {
        if (_process.HasExited) return;
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        End();
        _process.Dispose();
    }
}
