using System.Security.Cryptography;
using Patching.Deltas;
using Patching.Manifests;
using Patching.Signing;
using Patching.Tests.Trust;

namespace Patching.Tests.TestHelpers;

/// <summary>
/// Format 2 patches whose deltas read windows of contents the same patch rebuilds earlier: three new builds of one
/// bundle (<see cref="A"/>, <see cref="B"/>, <see cref="C"/>), each the previous one edited in a few places. After the
/// builder wrote the patch, <see cref="Rewrite"/> makes B a delta against all of A and C a copy of a base range followed
/// by a delta against all of B (a chain C → B → A), orders the three recipes A, B, C, and signs the manifest again.
/// </summary>
internal static class ContentWindowPatch
{
    public const string A = "build/a.bundle.js";
    public const string B = "build/b.bundle.js";
    public const string C = "build/c.bundle.js";

    /// <summary>The base file C copies its first <see cref="CopiedBytes"/> from (written by the scenario).</summary>
    public const string CopiedFrom = "build/shared.bin";

    public const int CopiedBytes = 1_000;

    public static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Writes the three builds into the new tree only, and the base file C copies from into both.</summary>
    public static void AddBuilds(PatchScenario s, int length = 120_000)
    {
        var a = Deltas.Format2ApplyTests.Noise(51, length);
        var b = (byte[])a.Clone();
        foreach (var at in new[] { 1_000, length / 2, length - 10 }) b[at] ^= 0x33;
        var shared = Deltas.Format2ApplyTests.Noise(52, 4 * CopiedBytes);
        var c = (byte[])b.Clone();
        foreach (var at in new[] { 5_000, length / 3 }) c[at] ^= 0x44;
        PatchScenario.Write(s.NewTree, A, a);
        PatchScenario.Write(s.NewTree, B, b);
        PatchScenario.Write(s.NewTree, C, [.. shared.AsSpan(0, CopiedBytes), .. c]);
        PatchScenario.Write(s.OldTree, CopiedFrom, shared);
        PatchScenario.Write(s.NewTree, CopiedFrom, shared);
    }

    /// <summary>Rewrites the built patch in <paramref name="s"/>'s patch directory (see the class); returns its manifest.</summary>
    public static Manifest Rewrite(PatchScenario s, Action<HostileCorpusFormat2.Workbench>? more = null) => Rewrite(s.PatchDir, s.NewTree, s.PrivateKey, more);

    public static Manifest Rewrite(string patchDir, string newTree, string privateKeyPem, Action<HostileCorpusFormat2.Workbench>? more = null)
    {
        var a = File.ReadAllBytes(Path.Join(newTree, A));
        var b = File.ReadAllBytes(Path.Join(newTree, B));
        var c = File.ReadAllBytes(Path.Join(newTree, C));
        var w = new HostileCorpusFormat2.Workbench(patchDir);
        var recipes = w.Manifest.Recipes.ToList();
        var at = recipes.FindIndex(r => r.Sha256 is var sha && (sha == Sha(a) || sha == Sha(b) || sha == Sha(c)));
        recipes.RemoveAll(r => r.Sha256 == Sha(a) || r.Sha256 == Sha(b) || r.Sha256 == Sha(c));

        // A content the base holds whole has no recipe from the builder: A is then shipped whole, as a plain frame.
        var ra = w.Manifest.Recipes.SingleOrDefault(r => r.Sha256 == Sha(a))
            ?? new ContentRecipe { Sha256 = Sha(a), Size = a.Length, Ops = [w.AppendFrame(new DeltaOp { Kind = DeltaOpKind.Data, Length = a.Length, Sha256 = Sha(a) }, ZstdPatch.Compress([], a, 3))] };
        var bOp = w.AppendFrame(new DeltaOp { Kind = DeltaOpKind.Data, Length = b.Length, Sha256 = Sha(b) }, ZstdPatch.Compress(a, b, 3))
            with { Refs = [RefWindow.InContent(Sha(a), 0, a.Length, Sha(a))] };
        var tail = c.AsSpan(CopiedBytes).ToArray();
        var cData = w.AppendFrame(new DeltaOp { Kind = DeltaOpKind.Data, Length = tail.Length, Sha256 = Sha(tail) }, ZstdPatch.Compress(b, tail, 3))
            with { Refs = [RefWindow.InContent(Sha(b), 0, b.Length, Sha(b))] };
        // The copy reads offset 0 of a base file, where C's window into B starts too: it must be read from the base.
        var cCopy = new DeltaOp { Kind = DeltaOpKind.Copy, Length = CopiedBytes, Sha256 = Sha(c.AsSpan(0, CopiedBytes)), BasePath = CopiedFrom, BaseOffset = 0 };

        // A, B and C, in that order, where the first of them was, so that each reads only an earlier one.
        recipes.InsertRange(at < 0 ? recipes.Count : Math.Min(at, recipes.Count),
        [
            ra,
            new ContentRecipe { Sha256 = Sha(b), Size = b.Length, Ops = [bOp] },
            new ContentRecipe { Sha256 = Sha(c), Size = c.Length, Ops = [cCopy, cData] },
        ]);
        w.Manifest = w.Manifest with { Recipes = recipes };
        more?.Invoke(w);
        var bytes = MessagePackManifest.Serialize(w.Manifest);
        File.WriteAllBytes(Path.Join(patchDir, ManifestCodec.BinaryManifestFileName), bytes);
        File.WriteAllBytes(Path.Join(patchDir, ManifestCodec.SignatureFileName),
            ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [SigningKeys.Sign(bytes, privateKeyPem)] }));
        return w.Manifest;
    }
}
