using Patching.Deltas;
using Patching.IO;
using Patching.Manifests;
using Patching.Sources;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Deltas;

/// <summary>The receiver rebuilds every content of a patch through one open payload, and checks what it writes.</summary>
public sealed class DeltaReceiverTests
{
    [Test]
    public void Write_EveryContentOfAPatch_OpensThePayloadOnceAndRebuildsEachExactly()
    {
        using var s = Format2ApplyTests.MovingGame(new PatchScenario().WithFormat(2)).Install();
        s.BuildPatch();
        var package = PatchPackage.Open(s.PatchDir, ManifestLimits.Default);
        var walk = TreeOps.Walk(FileOps.Instance, s.InstallDir).ToDictionary(e => e.Path, e => e.Info, StringComparer.Ordinal);
        var recipes = package.Manifest.Recipes;
        var frames = recipes.SelectMany(r => r.Ops).Count(o => o.Kind == DeltaOpKind.Data);

        using (var receiver = new DeltaReceiver(FileOps.Instance, s.InstallDir, package, walk))
        {
            Parallel.ForEach(recipes, recipe =>
            {
                using var output = new MemoryStream();
                receiver.Write(recipe, output, null, CancellationToken.None);
                Assert.That(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(output.ToArray())), Is.EqualTo(recipe.Sha256));
            });
        }

        Assert.That(frames, Is.GreaterThan(1), "the patch has several frames");
        Assert.That(package.PayloadOpens, Is.EqualTo(1), "one open for every frame of the apply");
        Assert.That(package.BlobReads, Is.EqualTo(frames), "each frame read once");
    }
}
