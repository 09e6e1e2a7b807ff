using System.Diagnostics;

namespace Patching.Tests.TestHelpers;

/// <summary>Runs Patcher.CrashHost in a child process, optionally armed to SIGKILL itself at the N-th crash point.</summary>
internal static class CrashHost
{
    public sealed record Run(int ExitCode, string StdOut, string StdErr)
    {
        /// <summary>True when the child died of SIGKILL (exit 137), not by returning.</summary>
        public bool Killed => ExitCode == 137 || ExitCode == -1;
    }

    private static string HostDll => Path.Join(AppContext.BaseDirectory, "Patcher.CrashHost.dll");

    /// <param name="args">The host's command line.</param>
    /// <param name="crashAt">The crash point to die at (0: none).</param>
    /// <param name="crashLog">Where to list the crash points passed.</param>
    /// <param name="resumeRecordBytes">Bytes between progress records of a rebuilt content (0: the library's default).</param>
    /// <param name="parallelFromBytes">Bytes a content must have for its operations to be produced several at once (0: the library's default).</param>
    public static Run Start(IEnumerable<string> args, int crashAt = 0, string? crashLog = null, long resumeRecordBytes = 0, long parallelFromBytes = 0)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(HostDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("PATCHER_TEST_CRASH_AT");
        psi.Environment.Remove("PATCHER_TEST_CRASH_LOG");
        if (crashAt > 0) psi.Environment["PATCHER_TEST_CRASH_AT"] = crashAt.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (crashLog is not null) psi.Environment["PATCHER_TEST_CRASH_LOG"] = crashLog;
        psi.Environment.Remove("PATCHER_TEST_RESUME_RECORD_BYTES");
        if (resumeRecordBytes > 0) psi.Environment["PATCHER_TEST_RESUME_RECORD_BYTES"] = resumeRecordBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment.Remove("PATCHER_TEST_PARALLEL_FROM_BYTES");
        if (parallelFromBytes > 0) psi.Environment["PATCHER_TEST_PARALLEL_FROM_BYTES"] = parallelFromBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("crash host did not finish within 2 minutes");
        }

        return new Run(p.ExitCode, stdout.Result, stderr.Result);
    }
}
