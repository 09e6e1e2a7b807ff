using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// The real file system, with callbacks just before and just after a directory exchange: what a running game
/// could do to the install in those windows (save again, replace a file).
/// </summary>
internal sealed class ExchangeHookFileOps(IFileOps inner, Action before, Action after) : FileOpsDecorator(inner)
{
    public override bool TryExchange(string a, string b)
    {
        before();
        var done = Inner.TryExchange(a, b);
        if (done) after();
        return done;
    }
}
