using Patching;

namespace PatchTool.Infrastructure;

/// <summary>
/// patchtool's exit codes. They are a contract for scripts: never renumber. Documented in README.md and in
/// <c>patchtool --help</c>.
/// </summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A bug or an environment problem patchtool did not classify (I/O on its own files, ...).</summary>
    public const int Unexpected = 1;
    /// <summary>Bad command line: unknown option, missing value, contradictory options, missing input file.</summary>
    public const int Usage = 2;
    /// <summary>The patch was refused: signature, format, hostile content (PatchErrorCode 100–199).</summary>
    public const int PatchRefused = 3;
    /// <summary>The install could not be patched or is not in the expected state (PatchErrorCode 200–299).</summary>
    public const int InstallProblem = 4;
    /// <summary>Another process holds the install's transaction lock; try again later.</summary>
    public const int Busy = 5;
    /// <summary>
    /// Interrupted (Ctrl-C, SIGINT, SIGTERM) before the commit: nothing was committed, the old version is intact. 130 is
    /// what shells report for a process ended by SIGINT, and what System.CommandLine returns when a command ignores it.
    /// </summary>
    public const int Interrupted = 130;

    /// <summary>Maps a stable library error code to an exit code.</summary>
    public static int For(PatchErrorCode code) => code switch
    {
        PatchErrorCode.Busy => Busy,
        >= (PatchErrorCode)100 and <= (PatchErrorCode)199 => PatchRefused,
        >= (PatchErrorCode)200 and <= (PatchErrorCode)299 => InstallProblem,
        _ => Unexpected,
    };

    /// <summary>The text appended to <c>patchtool --help</c>.</summary>
    public const string HelpText =
        """
        Exit codes:
          0  success
          1  unexpected error
          2  usage error (bad options, missing input file)
          3  patch refused: signature, format or hostile content (error codes 100-199)
          4  install problem: base mismatch, disk full, locked file, verify failed (error codes 200-299)
          5  busy: another process is patching this install; nothing was changed, try again later
          130  interrupted (Ctrl-C) before the commit: nothing was committed, the old version is intact
        Errors are one line on stderr: patchtool: error <CodeName> (<code>): <message>
        """;
}
