using System.Security.Cryptography;
using Patching.Deltas;
using Patching.Manifests;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// Rebuilds the contents of format 2 recipes straight from a base folder and a payload, in recipe order, the way the
/// format describes them: copies from base files, frames decoded against their reference windows, which lie in base
/// files or in contents rebuilt by earlier recipes. Independent of the applier, so builder tests can check what the
/// builder wrote; every op's output and every window is checked against its SHA-256.
/// </summary>
internal static class RecipeRebuilder
{
    /// <summary>The bytes of every recipe's content, by the content's SHA-256.</summary>
    public static Dictionary<string, byte[]> Rebuild(string baseDir, IReadOnlyList<ContentRecipe> recipes, byte[] payload)
    {
        var rebuilt = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var recipe in recipes)
        {
            var output = new MemoryStream();
            foreach (var op in recipe.Ops)
            {
                var bytes = op.Kind == DeltaOpKind.Copy
                    ? Slice(File.ReadAllBytes(Path.Join(baseDir, op.BasePath!)), op.BaseOffset, op.Length)
                    : ZstdPatch.Decompress(Reference(baseDir, op, rebuilt), payload.AsSpan((int)op.PayloadOffset, (int)op.StoredLength), (int)op.Length, "test").ToArray();
                Check(bytes, op.Sha256, $"op of {recipe.Sha256}");
                output.Write(bytes);
            }

            var content = output.ToArray();
            Check(content, recipe.Sha256, "content");
            rebuilt[recipe.Sha256] = content;
        }

        return rebuilt;
    }

    private static byte[] Reference(string baseDir, DeltaOp op, Dictionary<string, byte[]> earlier)
    {
        var reference = new MemoryStream();
        foreach (var window in op.Refs)
        {
            byte[] source;
            if (window.Content is null) source = File.ReadAllBytes(Path.Join(baseDir, window.Path));
            else if (!earlier.TryGetValue(window.Content, out source!)) throw new InvalidOperationException($"window into content {window.Content}, not rebuilt earlier");
            var bytes = Slice(source, window.Offset, window.Length);
            Check(bytes, window.Sha256, "reference window");
            reference.Write(bytes);
        }

        return reference.ToArray();
    }

    private static byte[] Slice(byte[] bytes, long offset, long length) => bytes.AsSpan((int)offset, (int)length).ToArray();

    private static void Check(byte[] bytes, string sha256, string what)
    {
        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != sha256) throw new InvalidOperationException($"{what}: SHA-256 {actual}, declared {sha256}");
    }
}
