using Patching.IO;

namespace Patching.Tests.TestHelpers;

/// <summary>Runs <c>race</c> once, just before the engine creates <c>path</c>: another process getting there first.</summary>
internal sealed class RacingFileOps(IFileOps inner, string path, Action race) : FileOpsDecorator(inner)
{
    public bool Raced { get; private set; }

    public override void CreateDirectory(string directory)
    {
        if (!Raced && directory == path)
        {
            Raced = true;
            race();
        }

        base.CreateDirectory(directory);
    }
}
