using Patching.Manifests;
using Patching.Signing;

namespace Patching.Tests.TestHelpers;

/// <summary>Low-level edits of a patch directory, for tests of what a trusted but broken publisher could ship.</summary>
internal static class PatchFiles
{
    public static string ManifestPath(string patchDir) => Path.Join(patchDir, ManifestCodec.ManifestFileName);

    /// <summary>
    /// Signs whatever manifest.json now holds with <paramref name="keyFile"/>, replacing manifest.sig, without
    /// parsing it (<c>patchtool sign</c> refuses to sign a manifest it cannot read). Lets a test reach the checks
    /// that run after the signature.
    /// </summary>
    public static void ResignRaw(string patchDir, string keyFile)
    {
        var entry = SigningKeys.Sign(File.ReadAllBytes(ManifestPath(patchDir)), File.ReadAllText(keyFile));
        File.WriteAllBytes(Path.Join(patchDir, ManifestCodec.SignatureFileName),
            ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [entry] }));
    }

    /// <summary>Replaces text in manifest.json (ordinal; fails the test if the text is absent).</summary>
    public static void EditManifest(string patchDir, string from, string to)
    {
        var path = ManifestPath(patchDir);
        var text = File.ReadAllText(path);
        Assert.That(text, Does.Contain(from), "the edit's anchor text");
        File.WriteAllText(path, text.Replace(from, to, StringComparison.Ordinal));
    }
}
