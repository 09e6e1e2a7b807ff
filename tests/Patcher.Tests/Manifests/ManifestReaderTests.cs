using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Patching.Manifests;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Manifests;

/// <summary>
/// <see cref="ManifestReader"/> replaced System.Text.Json's deserializer for reading manifests. These tests hold it to
/// the serializer's answers: on the golden manifests, and on hundreds of damaged copies of them (every property
/// removed, nulled, given a value of another type; an unknown property in every object; truncations; trailing data).
/// </summary>
public sealed class ManifestReaderTests
{
    private static readonly string[] Goldens = ["sample-1.0.0-to-1.1.0", "sample-full-1.0.0"];

    private static byte[] Golden(string name) => File.ReadAllBytes(Path.Join(RepoPaths.Golden, name, ManifestCodec.ManifestFileName));

    /// <summary>
    /// What the serializer made of these bytes, with the checks the codec ran around it (its format number, null entries),
    /// or null when they refused them.
    /// </summary>
    private static Manifest? Serializer(byte[] bytes)
    {
        try
        {
            var m = JsonSerializer.Deserialize(bytes, ManifestJsonContext.Default.Manifest);
            if (m is null || m.Format != Manifest.CurrentFormat) return null;
            if (m.Directories.Any(d => d is null) || (m.BaseDirectories?.Any(d => d is null) ?? false) ||
                m.Files.Any(f => f is null || f.Parts is null || f.Parts.Any(p => p is null)) || m.Base.Any(b => b is null) || m.Blobs.Any(b => b is null))
                return null;
            return m.BaseDirectories is null ? m with { BaseDirectories = [] } : m;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static Manifest? Reader(byte[] bytes, out string? error)
    {
        error = null;
        try
        {
            return ManifestReader.Read(bytes);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            error = ex.Message;
            return null;
        }
    }

    [TestCaseSource(nameof(Goldens))]
    public void Read_GoldenManifest_EqualsWhatTheSerializerReads(string name)
    {
        var bytes = Golden(name);

        var read = ManifestReader.Read(bytes);

        Assert.That(ManifestCodec.Serialize(read), Is.EqualTo(ManifestCodec.Serialize(Serializer(bytes)!)));
        Assert.That(ManifestCodec.Serialize(read), Is.EqualTo(bytes));
    }

    [TestCaseSource(nameof(Goldens))]
    public void Read_DamagedCopiesOfGolden_AcceptsAndRefusesWhatTheSerializerDoes(string name)
    {
        var cases = Damaged(Golden(name)).ToList();
        var disagreements = new List<string>();
        foreach (var (what, bytes) in cases)
        {
            var expected = Serializer(bytes);
            var actual = Reader(bytes, out var error);
            if (expected is null && actual is not null) disagreements.Add($"{what}: the serializer refused it, the reader accepted it");
            else if (expected is not null && actual is null) disagreements.Add($"{what}: the serializer accepted it, the reader refused it ({error})");
            else if (expected is not null && !ManifestCodec.Serialize(expected).AsSpan().SequenceEqual(ManifestCodec.Serialize(actual!)))
                disagreements.Add($"{what}: both accepted it but read different manifests");
        }

        Assert.That(cases, Has.Count.GreaterThan(100), "the damage generator should cover every property");
        Assert.That(disagreements, Is.Empty);
    }

    [Test]
    public void Read_PropertyNamedTwiceWithTheSameValue_RefusedWhereTheSerializerKeptOne()
    {
        var node = JsonNode.Parse(Golden(Goldens[0]))!;
        var text = node.ToJsonString();
        // Insert a second "path" with the same value into the first file entry.
        var firstPath = node["files"]![0]!["path"]!.GetValue<string>();
        var duplicated = Encoding.UTF8.GetBytes(text.Replace($"\"path\":\"{firstPath}\"", $"\"path\":\"{firstPath}\",\"path\":\"{firstPath}\"", StringComparison.Ordinal));

        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(duplicated));

        Assert.That(Serializer(duplicated), Is.Not.Null, "the serializer keeps the last of two equal values");
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
        Assert.That(ex.Message, Does.Contain("$.files[0] names path twice"));
    }

    [TestCase("{\"\\udc00\": 1, \"format\": 1}")]
    [TestCase("{\"format\": 1, \"\\ud800\": 1}")]
    [TestCase("{\"format\": 1, \"product\": \"\\ud800\"}")]
    public void Deserialize_NameOrValueEscapingALoneSurrogate_ManifestMalformed(string json)
    {
        // Regression (review): a lone surrogate in a name before "format" escaped as InvalidOperationException.
        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(Encoding.UTF8.GetBytes(json)));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void Deserialize_PathThatIsNotUtf8_ManifestMalformed()
    {
        var bytes = Golden(Goldens[0]);
        var at = Encoding.UTF8.GetString(bytes).IndexOf("readme.txt", StringComparison.Ordinal);
        var damaged = (byte[])bytes.Clone();
        damaged[at] = 0xC3; // a lead byte followed by an ASCII letter: not UTF-8
        damaged[at + 1] = (byte)'(';

        var ex = Assert.Throws<PatcherException>(() => ManifestCodec.Deserialize(damaged));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestMalformed));
    }

    [Test]
    public void Read_ManyFiles_EachSinglePartSharesItsFilesHashString()
    {
        var files = Enumerable.Range(0, 1000).Select(i => TargetFile.Whole($"f{i:D4}.bin", i + 1, Convert.ToHexStringLower(BitConverter.GetBytes((long)i)).PadLeft(64, '0'))).ToList();
        var bytes = ManifestCodec.Serialize(new Manifest
        {
            Product = "p",
            Version = "2",
            FromVersion = "1",
            Created = DateTimeOffset.UnixEpoch,
            Directories = [],
            Files = files,
            Base = [],
            Blobs = [],
        });

        var read = ManifestReader.Read(bytes);

        Assert.That(ManifestCodec.Serialize(read), Is.EqualTo(bytes));
        Assert.That(read.Files.All(f => ReferenceEquals(f.Parts[0].Sha256, f.Sha256)), Is.True);
    }

    /// <summary>Damaged copies of a manifest, each with a description.</summary>
    private static IEnumerable<(string What, byte[] Bytes)> Damaged(byte[] golden)
    {
        JsonNode Fresh() => JsonNode.Parse(golden)!;
        byte[] Bytes(JsonNode n) => Encoding.UTF8.GetBytes(n.ToJsonString());

        // Every object in the document, addressed by a path of property names and indexes.
        var objects = new List<object[]>();
        void Collect(JsonNode node, object[] at)
        {
            switch (node)
            {
                case JsonObject o:
                    objects.Add(at);
                    foreach (var (k, v) in o) if (v is not null) Collect(v, [.. at, k]);
                    break;
                case JsonArray a:
                    for (var i = 0; i < a.Count; i++) if (a[i] is not null) Collect(a[i]!, [.. at, i]);
                    break;
            }
        }

        Collect(Fresh(), []);

        JsonNode Resolve(JsonNode root, object[] at) => at.Aggregate(root, (n, step) => step is int i ? n[i]! : n[(string)step]!);
        string Name(object[] at) => "$" + string.Concat(at.Select(s => s is int i ? $"[{i}]" : $".{s}"));

        JsonNode?[] replacements = [null, JsonValue.Create("x"), JsonValue.Create(1), JsonValue.Create(1.5), JsonValue.Create(-1), JsonValue.Create(true), new JsonObject(), new JsonArray(), new JsonArray(JsonValue.Create((string?)null))];
        foreach (var at in objects)
        {
            var keys = ((JsonObject)Resolve(Fresh(), at)).Select(p => p.Key).ToList();
            foreach (var key in keys)
            {
                var removed = Fresh();
                ((JsonObject)Resolve(removed, at)).Remove(key);
                yield return ($"{Name(at)}.{key} removed", Bytes(removed));
                foreach (var value in replacements)
                {
                    var changed = Fresh();
                    ((JsonObject)Resolve(changed, at))[key] = value?.DeepClone();
                    yield return ($"{Name(at)}.{key} = {value?.ToJsonString() ?? "null"}", Bytes(changed));
                }
            }

            var unknown = Fresh();
            ((JsonObject)Resolve(unknown, at))["surprise"] = 1;
            yield return ($"{Name(at)} with an unknown property", Bytes(unknown));
            var wrongCase = Fresh();
            var obj = (JsonObject)Resolve(wrongCase, at);
            var first = obj.First();
            obj.Remove(first.Key);
            obj[first.Key.ToUpperInvariant()] = first.Value?.DeepClone();
            yield return ($"{Name(at)}.{first.Key} spelled in capitals", Bytes(wrongCase));
        }

        // Every list with a null entry appended.
        foreach (var list in new[] { "directories", "files", "base", "baseDirectories", "blobs" })
        {
            var n = Fresh();
            if (n[list] is JsonArray a)
            {
                a.Add(null);
                yield return ($"$.{list} with a null entry", Bytes(n));
            }
        }

        var compact = Bytes(Fresh());
        for (var cut = 1; cut < compact.Length; cut += Math.Max(1, compact.Length / 40)) yield return ($"cut after {cut} bytes", compact[..cut]);
        yield return ("trailing object", [.. compact, .. "{}"u8]);
        yield return ("trailing comma inside", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(compact).Replace("]", ",]", StringComparison.Ordinal)));
        yield return ("comment", [.. "/* c */"u8, .. compact]);
        var text = Encoding.UTF8.GetString(compact);
        yield return ("sizes as strings", Encoding.UTF8.GetBytes(Regex.Replace(text, "\"size\":([0-9]+)", "\"size\":\"$1\"")));
        yield return ("sizes with an exponent", Encoding.UTF8.GetBytes(Regex.Replace(text, "\"size\":([0-9]+)", "\"size\":$1e0")));
        yield return ("sizes with a fraction", Encoding.UTF8.GetBytes(Regex.Replace(text, "\"size\":([0-9]+)", "\"size\":$1.0")));
    }
}
