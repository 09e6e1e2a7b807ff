using Patching.Building;
using Patching.Deltas;
using Patching.Manifests;
using Patching.Signing;
using Patching.Tests.TestHelpers;
using PatchTool.Infrastructure;

namespace Patching.Tests.Trust;

/// <summary>
/// Hostile format 2 patches in fixtures/hostile (directories named <c>format2-*</c>): the sample patch built in format 2
/// with one attack on its recipes or payload, re-signed with the TEST key so that the defence past the signature is
/// what refuses it. Generated with the format 1 corpus (<see cref="HostileCorpus.Generate"/>).
/// </summary>
internal static class HostileCorpusFormat2
{
    /// <summary>A format 2 patch directory being turned hostile.</summary>
    public sealed class Workbench(string dir)
    {
        public string Dir { get; } = dir;
        public Manifest Manifest { get; set; } = Read(dir);

        /// <summary>Runs after signing (attacks on what beside the manifest is not signed).</summary>
        public Action<string>? AfterSign { get; set; }
        /// <summary>Manifest bytes to sign instead of <see cref="Manifest"/> (attacks on the encoding itself).</summary>
        public Func<byte[], byte[]>? Rewrite { get; set; }
        public string PayloadPath => Path.Join(Dir, DeltaLimits.PayloadFileName);

        /// <summary>The first recipe with a data operation, and that operation's index.</summary>
        public (ContentRecipe Recipe, int Op) FirstData()
        {
            var r = Manifest.Recipes.First(x => x.Ops.Any(o => o.Kind == DeltaOpKind.Data));
            return (r, r.Ops.ToList().FindIndex(o => o.Kind == DeltaOpKind.Data));
        }

        /// <summary>Replaces operation <paramref name="op"/> of <paramref name="recipe"/>.</summary>
        public void Replace(ContentRecipe recipe, int op, DeltaOp with)
        {
            var ops = recipe.Ops.ToList();
            ops[op] = with;
            Manifest = Manifest with { Recipes = Manifest.Recipes.Select(r => ReferenceEquals(r, recipe) ? r with { Ops = ops } : r).ToList() };
        }

        /// <summary>
        /// Puts the first recipe with a data operation first or last among the recipes, and adds to that operation the
        /// reference window <paramref name="window"/> makes of the recipes in their new order.
        /// </summary>
        public void AddWindow(bool readerLast, Func<IReadOnlyList<ContentRecipe>, ContentRecipe, RefWindow> window)
        {
            var (r, i) = FirstData();
            var others = Manifest.Recipes.Where(x => !ReferenceEquals(x, r)).ToList();
            List<ContentRecipe> recipes = readerLast ? [.. others, r] : [r, .. others];
            Manifest = Manifest with { Recipes = recipes };
            Replace(r, i, r.Ops[i] with { Refs = [.. r.Ops[i].Refs, window(recipes, r)] });
        }

        /// <summary>Appends a frame to the payload and returns the data operation reading it (no reference).</summary>
        public DeltaOp AppendFrame(DeltaOp op, byte[] frame)
        {
            var offset = new FileInfo(PayloadPath).Length;
            using (var s = new FileStream(PayloadPath, FileMode.Append)) s.Write(frame);
            Manifest = Manifest with { PayloadSize = offset + frame.Length };
            return op with { PayloadOffset = offset, StoredLength = frame.Length, Refs = [] };
        }
    }

    /// <summary>
    /// A zstd frame (RFC 8878) whose header declares a 2^30-byte window and no content size, holding one raw byte:
    /// magic, descriptor 0x00 (no size, not single-segment), window descriptor exponent 20 (10 + 20 = 30), and one last
    /// raw block of one byte.
    /// </summary>
    internal static readonly byte[] HugeWindowFrame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 20 << 3, 0x09, 0x00, 0x00, 0x41];

    /// <summary>The patch's manifest, composed over the base manifest beside it when it lists only changes.</summary>
    private static Manifest Read(string dir)
    {
        var bytes = File.ReadAllBytes(Path.Join(dir, ManifestCodec.BinaryManifestFileName));
        var basePath = Path.Join(dir, VersionManifest.FileName);
        return File.Exists(basePath)
            ? MessagePackManifest.Deserialize(bytes, null, VersionManifest.Deserialize(File.ReadAllBytes(basePath), null))
            : ManifestCodec.Deserialize(bytes);
    }

    public static IReadOnlyList<HostileCorpus.Case> Cases { get; } =
    [
        Case("format2-delta-wrong-output", "mix-and-match: a valid zstd frame that decodes to other bytes than the signed ones", PatchErrorCode.DeltaOutputMismatch, "the manifest signs",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, w.AppendFrame(r.Ops[i], ZstdPatch.Compress([], new byte[r.Ops[i].Length], 3)));
            }),
        Case("format2-delta-longer-than-declared", "endless data: a frame decoding to more bytes than its operation declares", PatchErrorCode.DeltaOutputTooLong, "more than the declared",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, w.AppendFrame(r.Ops[i], ZstdPatch.Compress([], new byte[r.Ops[i].Length + 4096], 3)));
            }),
        Case("format2-decompression-bomb", "endless data: a 2 KB frame that inflates to 256 MiB, declared as a few hundred bytes", PatchErrorCode.DeltaOutputTooLong, "more than the declared",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, w.AppendFrame(r.Ops[i], ZstdPatch.Compress([], new byte[256 << 20], 1)));
            }),
        Case("format2-window-too-large", "memory bomb: a frame whose header asks for a 1 GiB decoding window", PatchErrorCode.DeltaWindowTooLarge, "does not decode",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, w.AppendFrame(r.Ops[i], HugeWindowFrame));
            }),
        Case("format2-delta-corrupt", "a frame that is not zstd data", PatchErrorCode.DeltaCorrupt, "does not decode",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, w.AppendFrame(r.Ops[i], "this is not a zstd frame at all"u8.ToArray()));
            }),
        Case("format2-reference-outside-base", "a reference window past the end of the base file it names", PatchErrorCode.DeltaReferenceOutsideBase, "outside it",
            w =>
            {
                var (r, i) = w.FirstData();
                var window = r.Ops[i].Refs[0];
                w.Replace(r, i, r.Ops[i] with { Refs = [window with { Offset = window.Offset + 1_000_000 }] });
            }),
        Case("format2-copy-outside-base", "a copied range past the end of the base file it names", PatchErrorCode.DeltaReferenceOutsideBase, "outside it",
            w =>
            {
                var (r, i) = w.FirstData();
                var b = w.Manifest.Base[0];
                w.Replace(r, i, new DeltaOp { Kind = DeltaOpKind.Copy, Length = r.Ops[i].Length, Sha256 = r.Ops[i].Sha256, BasePath = b.Path, BaseOffset = b.Size });
            }),
        Case("format2-frame-outside-payload", "a data operation reading past the end of the payload", PatchErrorCode.DeltaReferenceOutsideBase, "outside the payload",
            w =>
            {
                var (r, i) = w.FirstData();
                w.Replace(r, i, r.Ops[i] with { PayloadOffset = w.Manifest.PayloadSize });
            }),
        Case("format2-content-window-later", "a reference window into a content rebuilt after the one reading it (a cycle could deadlock the applier)",
            PatchErrorCode.DeltaReferenceNotEarlier, "no earlier recipe rebuilds",
            w => w.AddWindow(readerLast: false, (recipes, _) => RefWindow.InContent(recipes[1].Sha256, 0, 1, Marker))),
        Case("format2-content-window-itself", "a reference window into the very content it rebuilds", PatchErrorCode.DeltaReferenceNotEarlier, "no earlier recipe rebuilds",
            w => w.AddWindow(readerLast: true, (_, reader) => RefWindow.InContent(reader.Sha256, 0, 1, Marker))),
        Case("format2-content-window-unlisted", "a reference window naming content 127 of a manifest listing four", PatchErrorCode.DeltaReferenceNotEarlier, "does not list",
            w =>
            {
                w.AddWindow(readerLast: true, (recipes, _) => RefWindow.InContent(recipes[0].Sha256, 0, 1, Marker));
                w.Rewrite = bytes => ContentIndexed(bytes, 127);
            }),
        Case("format2-content-window-outside", "a reference window past the end of the earlier content it names", PatchErrorCode.DeltaReferenceOutsideBase, "outside it",
            w => w.AddWindow(readerLast: true, (recipes, _) => RefWindow.InContent(recipes[0].Sha256, recipes[0].Size - 1, 2, Marker))),
        Case("format2-content-window-wrong-hash", "mix-and-match: a reference window into an earlier content, signed with a hash its bytes do not have",
            PatchErrorCode.DeltaOutputMismatch, "reference window",
            w => w.AddWindow(readerLast: true, (recipes, _) => RefWindow.InContent(recipes[0].Sha256, 0, recipes[0].Size - 1, Marker))),
        Case("format2-unknown-key", "a key the format does not define (could change meaning for a newer reader)", PatchErrorCode.ManifestMalformed, "unknown key",
            w => w.Rewrite = bytes => AddKey(bytes, "installScript", "rm -rf /")),
        Case("format2-repeated-key", "a key given twice (two readers could take different values)", PatchErrorCode.ManifestMalformed, "appears twice",
            w => w.Rewrite = bytes => AddKey(bytes, "product", "other-game")),
        Case("format2-path-traversal", "archive extraction: a rebuilt file's path climbs out of the install", PatchErrorCode.UnsafePath, "'..' segment",
            w =>
            {
                var (r, _) = w.FirstData();
                w.Manifest = w.Manifest with { Files = [.. w.Manifest.Files, TargetFile.Whole("../escaped.txt", r.Size, r.Sha256)] };
            }),
    .. HostileCorpusChanges.Cases,
    ];

    internal static HostileCorpus.Case Case(string name, string attack, PatchErrorCode code, string message, Action<Workbench> mutate) =>
        new(name, attack, code, message, HostileCorpus.Setup.Fresh, _ => { }) { Format2 = mutate };

    /// <summary>The signed hash of the hostile content windows: the SHA-256 of no bytes, which no window of them has.</summary>
    private const string Marker = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>
    /// The manifest with the content index of its one window of length 1 at offset 0 hashed <see cref="Marker"/>
    /// (<c>[1, index, 0, 1, marker]</c>, index a positive fixint) replaced by <paramref name="index"/>.
    /// </summary>
    private static byte[] ContentIndexed(byte[] manifest, byte index)
    {
        byte[] tail = [0x00, 0x01, 0xc4, 0x20, .. Convert.FromHexString(Marker)];
        var at = manifest.AsSpan().IndexOf(tail);
        if (at < 3 || manifest[at - 3] != 0x95 || manifest[at - 2] != 0x01 || manifest[at - 1] > 0x7f)
            throw new InvalidOperationException("the content window to rewrite is not where it was written");
        var result = (byte[])manifest.Clone();
        result[at - 1] = index;
        return result;
    }

    /// <summary>Appends a string key and value to the manifest's top map (its header is a fixmap: fewer than 16 keys).</summary>
    private static byte[] AddKey(byte[] manifest, string key, string value)
    {
        if (manifest[0] is < 0x80 or >= 0x8f) throw new InvalidOperationException("expected a fixmap with room for one more key");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var w = new MessagePack.MessagePackWriter(buffer);
        w.Write(key);
        w.Write(value);
        w.Flush();
        var result = new byte[manifest.Length + buffer.WrittenCount];
        manifest.CopyTo(result, 0);
        buffer.WrittenSpan.CopyTo(result.AsSpan(manifest.Length));
        result[0]++;
        return result;
    }

    public static void Generate(string root, string v1, string v2, string key)
    {
        foreach (var c in Cases)
        {
            var dir = Path.Join(root, c.Name);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            HostileCorpus.BuildSample(dir, v1, v2, key, format: 2, listUnchanged: !HostileCorpusChanges.Names.Contains(c.Name));
            var w = new Workbench(dir);
            c.Format2!(w);
            var bytes = MessagePackManifest.Serialize(w.Manifest);
            if (w.Rewrite is not null) bytes = w.Rewrite(bytes);
            File.WriteAllBytes(Path.Join(dir, ManifestCodec.BinaryManifestFileName), bytes);
            File.WriteAllBytes(Path.Join(dir, ManifestCodec.SignatureFileName),
                ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [SigningKeys.Sign(bytes, key)] }));
            w.AfterSign?.Invoke(dir);
            File.WriteAllText(Path.Join(dir, "README"), c.Attack + "\n");
            File.WriteAllText(Path.Join(dir, "expect"), $"code={c.Expected}\nmessage={c.MessageFragment}\nsetup={c.Setup}\n");
        }
    }
}
