using System.Text;
using Patching;

namespace PatchTool.Infrastructure;

/// <summary>
/// Runs a command body and turns every failure into one line on stderr plus an exit code
/// (see <see cref="ExitCodes"/>). A <see cref="PatcherException"/> never prints a stack trace.
/// </summary>
internal static class CommandRunner
{
    public static int Run(ToolContext ctx, bool json, bool verbose, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception ex)
        {
            return Report(ctx, json, verbose, ex);
        }
    }

    public static async Task<int> RunAsync(ToolContext ctx, bool json, bool verbose, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            return Report(ctx, json, verbose, ex);
        }
    }

    /// <summary>Reports a failure the way every command does and returns its exit code.</summary>
    public static int Report(ToolContext ctx, bool json, bool verbose, Exception ex)
    {
        ex = Unwrap(ex);
        switch (ex)
        {
            case UsageException usage:
                ctx.Err.WriteLine($"patchtool: usage error: {OneLine(usage.Message)}");
                return ExitCodes.Usage;

            case PatcherException pe:
                ctx.Err.WriteLine(ErrorLine(pe.Code, pe.Message, pe.Path));
                if (verbose && pe.InnerException is { } inner)
                    ctx.Err.WriteLine($"patchtool:   caused by {inner.GetType().Name}: {OneLine(inner.Message)}");
                if (json) JsonOutput.Write(ctx.Out, new ErrorDocument(Info(pe)));
                return ExitCodes.For(pe.Code);

            case OperationCanceledException:
                ctx.Err.WriteLine("patchtool: interrupted; nothing was committed, the old version is intact");
                if (json) JsonOutput.Write(ctx.Out, new ErrorDocument(new ErrorInfo(null, "Interrupted", "interrupted; nothing was committed, the old version is intact", null)));
                return ExitCodes.Interrupted;

            case IOException or UnauthorizedAccessException:
                // patchtool's own file handling (reading a key, writing an output directory).
                ctx.Err.WriteLine($"patchtool: error: {OneLine(ex.Message)}");
                if (verbose) ctx.Err.WriteLine(ex.ToString());
                if (json) JsonOutput.Write(ctx.Out, new ErrorDocument(new ErrorInfo((int)PatchErrorCode.Unknown, ex.GetType().Name, ex.Message, null)));
                return ExitCodes.Unexpected;

            default:
                ctx.Err.WriteLine($"patchtool: unexpected error ({ex.GetType().Name}): {OneLine(ex.Message)}");
                if (verbose) ctx.Err.WriteLine(ex.ToString());
                else ctx.Err.WriteLine("patchtool: run again with --verbose for details");
                if (json) JsonOutput.Write(ctx.Out, new ErrorDocument(new ErrorInfo((int)PatchErrorCode.Unknown, ex.GetType().Name, ex.Message, null)));
                return ExitCodes.Unexpected;
        }
    }

    /// <summary>
    /// The library runs some checks with Parallel.For (blob verification, tree scans), which wraps a
    /// <see cref="PatcherException"/> in an <see cref="AggregateException"/>: report the first real one.
    /// </summary>
    internal static Exception Unwrap(Exception ex)
    {
        if (ex is not AggregateException aggregate) return ex;
        var inner = aggregate.Flatten().InnerExceptions;
        return inner.OfType<PatcherException>().FirstOrDefault()
            ?? inner.OfType<OperationCanceledException>().FirstOrDefault()
            ?? (inner.Count == 1 ? inner[0] : ex);
    }

    /// <summary><c>patchtool: error &lt;CodeName&gt; (&lt;int&gt;): &lt;message&gt;</c>, plus the path when the message lacks it.</summary>
    public static string ErrorLine(PatchErrorCode code, string message, string? path)
    {
        var line = new StringBuilder($"patchtool: error {code} ({(int)code}): {OneLine(message)}");
        if (!string.IsNullOrEmpty(path) && !message.Contains(path, StringComparison.Ordinal))
            line.Append(" (path: ").Append(OneLine(path)).Append(')');
        return line.ToString();
    }

    public static ErrorInfo Info(PatcherException pe) => new((int)pe.Code, pe.Code.ToString(), pe.Message, pe.Path);

    /// <summary>
    /// Escapes control characters: messages can quote a hostile manifest, and an error must stay one line
    /// that cannot drive the terminal.
    /// </summary>
    public static string OneLine(string s)
    {
        if (!s.Any(char.IsControl)) return s;
        var sb = new StringBuilder(s.Length + 16);
        foreach (var c in s)
        {
            if (char.IsControl(c)) sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            else sb.Append(c);
        }

        return sb.ToString();
    }
}
