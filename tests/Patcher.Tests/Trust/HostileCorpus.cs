using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Patching.Building;
using Patching.Manifests;
using Patching.Signing;
using Patching.Tests.TestHelpers;
using PatchTool.Infrastructure;

namespace Patching.Tests.Trust;

/// <summary>
/// The hostile patches in fixtures/hostile. Each is the sample patch (1.0.0 → 1.1.0) with one attack applied,
/// re-signed with the TEST key where the attack is past the signature (so the deeper defence is what refuses it).
/// Regenerate with <c>dotnet test --filter Name=HostileCorpus_Regenerate</c> (an explicit test).
/// </summary>
internal static class HostileCorpus
{
    /// <summary>How the install is prepared before the attack: a plain copy of v1, or v1 installed through Patcher (journal knows 1.0.0).</summary>
    public enum Setup
    {
        Fresh,
        Installed,
    }

    public sealed record Case(string Name, string Attack, PatchErrorCode Expected, string MessageFragment, Setup Setup, Action<Workbench> Mutate)
    {
        /// <summary>Set for a format 2 case (<see cref="HostileCorpusFormat2"/>), which mutates a format 2 patch instead.</summary>
        public Action<HostileCorpusFormat2.Workbench>? Format2 { get; init; }
    }

    /// <summary>A patch directory being turned hostile.</summary>
    public sealed class Workbench(string dir, string privatePem)
    {
        public string Dir { get; } = dir;
        public JsonObject Manifest { get; set; } = JsonNode.Parse(File.ReadAllBytes(Path.Join(dir, ManifestCodec.ManifestFileName)))!.AsObject();
        public bool Resign { get; set; } = true;
        /// <summary>Manifest bytes to sign instead of <see cref="Manifest"/> (for non-JSON attacks).</summary>
        public byte[]? RawManifest { get; set; }
        public string PrivatePem { get; set; } = privatePem;
        public Action<string>? AfterSign { get; set; }

        public JsonArray Files => Manifest["files"]!.AsArray();
        public JsonArray Blobs => Manifest["blobs"]!.AsArray();

        public string BlobPath(JsonNode blob)
        {
            var sha = (string)blob["sha256"]!;
            var ext = (string)blob["compression"]! == "br" ? ".br" : "";
            return Path.Join(Dir, "blobs", sha[..2], sha + ext);
        }

        /// <summary>Adds a file entry (with its one-part content list) pointing at an existing blob.</summary>
        public void AddFile(string path, JsonNode blob) =>
            Files.Add(new JsonObject
            {
                ["path"] = path,
                ["size"] = (long)blob["size"]!,
                ["sha256"] = (string)blob["sha256"]!,
                ["executable"] = false,
                ["parts"] = new JsonArray(new JsonObject { ["sha256"] = (string)blob["sha256"]!, ["size"] = (long)blob["size"]! }),
            });

        public JsonNode FirstRawBlob() => Blobs.First(b => (string)b!["compression"]! == "none")!;
    }

    public static IReadOnlyList<Case> Cases { get; } =
    [
        new("unsigned", "arbitrary installation: the patch carries no signature", PatchErrorCode.SignatureMissing, "not signed", Setup.Fresh,
            w => w.Resign = false),
        new("untrusted-key", "arbitrary installation: signed by a key the launcher does not trust", PatchErrorCode.SignatureInvalid, "no valid signature from a trusted key", Setup.Fresh,
            w => w.PrivatePem = File.ReadAllText(RepoPaths.TestKey2)),
        new("tampered-manifest", "arbitrary installation: one byte of the signed manifest changed after signing", PatchErrorCode.SignatureInvalid, "no valid signature", Setup.Fresh,
            w => w.AfterSign = dir =>
            {
                var p = Path.Join(dir, ManifestCodec.ManifestFileName);
                var bytes = File.ReadAllBytes(p);
                var i = Array.IndexOf(bytes, (byte)'1');
                bytes[i] = (byte)'2';
                File.WriteAllBytes(p, bytes);
            }),
        new("garbled-signature", "arbitrary installation: the signature is truncated garbage", PatchErrorCode.SignatureInvalid, "no valid signature", Setup.Fresh,
            w => w.AfterSign = dir =>
            {
                var p = Path.Join(dir, ManifestCodec.SignatureFileName);
                var envelope = JsonNode.Parse(File.ReadAllBytes(p))!;
                envelope["signatures"]![0]!["signature"] = "AAAA" + ((string)envelope["signatures"]![0]!["signature"]!)[..20];
                File.WriteAllText(p, envelope.ToJsonString());
            }),
        new("expired", "indefinite freeze: a replayed patch whose expiry has passed", PatchErrorCode.ManifestExpired, "expired", Setup.Fresh,
            w => w.Manifest["expires"] = "2020-01-01T00:00:00+00:00"),
        new("rollback", "rollback: a validly signed but older version than the one installed", PatchErrorCode.NotNewer, "not newer", Setup.Installed,
            w => w.Manifest["version"] = "0.9.0"),
        new("wrong-product", "wrong software installation: a valid patch for another product", PatchErrorCode.WrongProduct, "is for product", Setup.Installed,
            w => w.Manifest["product"] = "other-game"),
        new("wrong-base", "mix-and-match: a patch for another base version", PatchErrorCode.WrongBaseVersion, "updates from 0.5.0", Setup.Installed,
            w => w.Manifest["fromVersion"] = "0.5.0"),
        new("path-traversal", "archive extraction: a file path climbs out of the install with ..", PatchErrorCode.UnsafePath, "'..' segment", Setup.Fresh,
            w => w.AddFile("../escaped.txt", w.FirstRawBlob())),
        new("path-traversal-nested", "archive extraction: .. hidden in the middle of a path", PatchErrorCode.UnsafePath, "'..' segment", Setup.Fresh,
            w => w.AddFile("data/../../escaped.txt", w.FirstRawBlob())),
        new("absolute-path", "archive extraction: an absolute path", PatchErrorCode.UnsafePath, "absolute", Setup.Fresh,
            w => w.AddFile("/tmp/escaped.txt", w.FirstRawBlob())),
        new("backslash-traversal", "archive extraction: Windows separators smuggling ..", PatchErrorCode.UnsafePath, "backslash", Setup.Fresh,
            w => w.AddFile("data\\..\\..\\escaped.txt", w.FirstRawBlob())),
        new("drive-letter", "archive extraction: a drive-qualified path", PatchErrorCode.UnsafePath, "':'", Setup.Fresh,
            w => w.AddFile("C:/Windows/escaped.dll", w.FirstRawBlob())),
        new("alternate-data-stream", "archive extraction: an NTFS alternate data stream", PatchErrorCode.UnsafePath, "alternate data stream", Setup.Fresh,
            w => w.AddFile("readme.txt:hidden", w.FirstRawBlob())),
        new("device-name", "archive extraction: a Windows device name (CON)", PatchErrorCode.UnsafePath, "reserved name 'CON'", Setup.Fresh,
            w => w.AddFile("data/CON.txt", w.FirstRawBlob())),
        new("device-name-com", "archive extraction: a Windows device name with a digit (COM1)", PatchErrorCode.UnsafePath, "reserved name 'com1'", Setup.Fresh,
            w => w.AddFile("com1", w.FirstRawBlob())),
        new("trailing-dot", "archive extraction: a trailing dot Windows silently strips", PatchErrorCode.UnsafePath, "ends with a dot or space", Setup.Fresh,
            w => w.AddFile("readme.txt.", w.FirstRawBlob())),
        new("control-character", "archive extraction: a control character in a name", PatchErrorCode.UnsafePath, "control character", Setup.Fresh,
            w => w.AddFile("data/evil\u001b[2Jname", w.FirstRawBlob())),
        new("case-collision", "archive extraction: two paths equal ignoring case overwrite each other on NTFS/APFS", PatchErrorCode.UnsafePath, "collides with", Setup.Fresh,
            w => w.AddFile("README.TXT", w.FirstRawBlob())),
        new("unicode-collision", "archive extraction: the same name in another Unicode normalisation", PatchErrorCode.UnsafePath, "normalization form C", Setup.Fresh,
            w => w.AddFile("cafe\u0301.txt", w.FirstRawBlob())),
        new("empty-segment", "archive extraction: an empty path segment", PatchErrorCode.UnsafePath, "empty segment", Setup.Fresh,
            w => w.AddFile("data//x.txt", w.FirstRawBlob())),
        new("huge-declared-size", "endless data: a file declaring a petabyte", PatchErrorCode.LimitExceeded, "over the limit", Setup.Fresh,
            w =>
            {
                var f = w.Files[0]!;
                f["size"] = 1L << 50;
                f["parts"]![0]!["size"] = 1L << 50;
            }),
        new("blob-longer-than-declared", "endless data: a blob with bytes appended beyond its declared size", PatchErrorCode.BlobSizeMismatch, "declares", Setup.Fresh,
            w => w.AfterSign = _ => File.AppendAllText(w.BlobPath(w.FirstRawBlob()), new string('x', 4096))),
        new("blob-wrong-content", "mix-and-match: a blob replaced by other content of the same size", PatchErrorCode.BlobHashMismatch, "has SHA-256", Setup.Fresh,
            w => w.AfterSign = _ =>
            {
                var p = w.BlobPath(w.FirstRawBlob());
                var bytes = File.ReadAllBytes(p);
                bytes[0] ^= 0xFF;
                File.WriteAllBytes(p, bytes);
            }),
        new("compression-bomb", "endless data: a Brotli blob that inflates far beyond its declared size", PatchErrorCode.BlobSizeMismatch, "holds more", Setup.Fresh,
            w =>
            {
                var blob = w.FirstRawBlob();
                var bomb = new byte[64 << 20];
                using var ms = new MemoryStream();
                using (var br = new BrotliStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) br.Write(bomb);
                File.Delete(w.BlobPath(blob));
                blob["compression"] = "br";
                blob["storedSize"] = ms.Length;
                File.WriteAllBytes(w.BlobPath(blob), ms.ToArray());
            }),
        new("blob-missing", "a blob the manifest needs is absent", PatchErrorCode.BlobMissing, "missing from the patch", Setup.Fresh,
            w => w.AfterSign = _ => File.Delete(w.BlobPath(w.FirstRawBlob()))),
        new("not-json", "a signed manifest that is not JSON (a signing-pipeline bug must not crash or confuse the applier)", PatchErrorCode.ManifestMalformed, "not valid JSON", Setup.Fresh,
            w => w.RawManifest = "{ this is not json"u8.ToArray()),
        new("future-format", "a manifest format this build does not know", PatchErrorCode.ManifestUnsupportedFormat, "format 2 is not supported", Setup.Fresh,
            w => w.Manifest["format"] = 2),
        new("unknown-field", "a field the format does not define (could change meaning for a newer reader)", PatchErrorCode.ManifestMalformed, "does not match format", Setup.Fresh,
            w => w.Manifest["installScript"] = "rm -rf /"),
        new("parts-do-not-add-up", "a file whose parts add up to another size than declared", PatchErrorCode.ManifestMalformed, "parts add up", Setup.Fresh,
            w => w.Files[0]!["size"] = (long)w.Files[0]!["size"]! + 1),
        new("undeclared-directory", "a file inside a directory the manifest does not list", PatchErrorCode.ManifestMalformed, "does not list", Setup.Fresh,
            w => w.AddFile("nowhere/x.txt", w.FirstRawBlob())),
        new("null-entry", "a null where a file entry belongs (a parser must not crash on it)", PatchErrorCode.ManifestMalformed, "null entry", Setup.Fresh,
            w => w.Files.Add(null)),
        new("null-signature", "a null where a signature entry belongs", PatchErrorCode.SignatureInvalid, "null entry", Setup.Fresh,
            w => w.AfterSign = dir => File.WriteAllText(Path.Join(dir, ManifestCodec.SignatureFileName), "{\"signatures\":[null]}")),
        new("reserved-state-name", "a file in .patcher/, where Patcher keeps its state inside an install it cannot write beside", PatchErrorCode.UnsafePath, "'.patcher'", Setup.Fresh,
            w =>
            {
                w.Manifest["directories"]!.AsArray().Add(".patcher");
                w.AddFile(".patcher/journal.db", w.FirstRawBlob());
            }),
        new("content-from-nowhere", "a file whose content is neither shipped nor in the base", PatchErrorCode.ManifestMalformed, "neither a blob nor in the base", Setup.Fresh,
            w =>
            {
                var f = w.Files[0]!;
                var fake = new string('a', 64);
                f["sha256"] = fake;
                f["parts"]![0]!["sha256"] = fake;
            }),
    ];

    /// <summary>The sample patch 1.0.0 → 1.1.0 in <paramref name="format"/>, signed, built at a fixed time, into <paramref name="dir"/>.</summary>
    /// <param name="listUnchanged">Format 2: list both trees whole (the format 2 corpus) rather than only the changes.</param>
    public static void BuildSample(string dir, string v1, string v2, string key, int format, bool listUnchanged = true) =>
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = v1,
            ToDir = v2,
            OutDir = dir,
            Product = SamplePatch.Product,
            Version = SamplePatch.ToVersion,
            FromVersion = SamplePatch.FromVersion,
            PrivateKeyPem = key,
            Time = new FixedTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)),
            Format = format,
            ListUnchanged = listUnchanged,
        });

    /// <summary>Writes every case into <paramref name="root"/>/NAME (manifest, signature, blobs, README, expect).</summary>
    public static void Generate(string root)
    {
        using var temp = new TempDir("hostile-gen");
        SampleData.CopyVersion(RepoPaths.Sample, "v1", temp["v1"]);
        SampleData.CopyVersion(RepoPaths.Sample, "v2", temp["v2"]);
        var key = File.ReadAllText(RepoPaths.TestKey);
        foreach (var c in Cases)
        {
            var dir = Path.Join(root, c.Name);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            BuildSample(dir, temp["v1"], temp["v2"], key, format: 1);
            var w = new Workbench(dir, key);
            c.Mutate(w);
            var bytes = w.RawManifest ?? Encoding.UTF8.GetBytes(w.Manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            File.WriteAllBytes(Path.Join(dir, ManifestCodec.ManifestFileName), bytes);
            var sigPath = Path.Join(dir, ManifestCodec.SignatureFileName);
            if (w.Resign)
                File.WriteAllBytes(sigPath, ManifestCodec.SerializeEnvelope(new SignatureEnvelope { Signatures = [SigningKeys.Sign(bytes, w.PrivatePem)] }));
            else
                File.Delete(sigPath);
            w.AfterSign?.Invoke(dir);
            File.WriteAllText(Path.Join(dir, "README"), c.Attack + "\n");
            File.WriteAllText(Path.Join(dir, "expect"), $"code={c.Expected}\nmessage={c.MessageFragment}\nsetup={c.Setup}\n");
        }

        HostileCorpusFormat2.Generate(root, temp["v1"], temp["v2"], key);
    }
}
