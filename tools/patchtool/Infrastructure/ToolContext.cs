namespace PatchTool.Infrastructure;

/// <summary>Where a command writes, and whether a person is watching (decides progress bars).</summary>
internal sealed class ToolContext
{
    public ToolContext(TextWriter output, TextWriter error, bool isTerminal)
    {
        Out = output;
        Err = error;
        IsTerminal = isTerminal;
    }

    /// <summary>Results (and <c>--json</c> documents).</summary>
    public TextWriter Out { get; }

    /// <summary>Error lines and warnings.</summary>
    public TextWriter Err { get; }

    /// <summary>True when <see cref="Out"/> is the process's stdout and that is an interactive terminal.</summary>
    public bool IsTerminal { get; }
}
