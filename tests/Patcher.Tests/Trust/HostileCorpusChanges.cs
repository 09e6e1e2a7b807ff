using System.Buffers;
using MessagePack;
using Patching.Manifests;
using static Patching.Tests.TestHelpers.MessagePackEdit;

namespace Patching.Tests.Trust;

/// <summary>
/// Hostile format 2 patches that list only changes (fixtures/hostile/format2-changes-*): the sample patch with its
/// added/changed/removed lists or its base manifest made to lie, re-signed with the TEST key (the base manifest beside
/// the patch is not signed: its hash is). Each is refused before anything changes.
/// </summary>
internal static class HostileCorpusChanges
{
    /// <summary>A path neither version of the sample has, sorting among its other paths.</summary>
    private const string Ghost = "data/ghost.dat";

    public static IReadOnlyList<HostileCorpus.Case> Cases { get; } =
    [
        HostileCorpusFormat2.Case("format2-changes-base-manifest-mismatch", "mix-and-match: base.msgpack describes another build of the base version than the one the patch names",
            PatchErrorCode.BaseManifestMismatch, "but the patch was built against base manifest",
            w => w.AfterSign = dir =>
            {
                var path = Path.Join(dir, VersionManifest.FileName);
                var listing = VersionManifest.Deserialize(File.ReadAllBytes(path), path);
                File.WriteAllBytes(path, VersionManifest.Serialize(listing with { Files = [.. listing.Files.Select(f => f with { Executable = !f.Executable })] }));
            }),
        HostileCorpusFormat2.Case("format2-changes-changed-not-in-base", "a change entry for a path the base version does not have",
            PatchErrorCode.ManifestMalformed, $"changed file '{Ghost}' is not in the base version",
            w => w.Rewrite = bytes => AddPath(bytes, MessagePackManifest.KChanged, Ghost)),
        HostileCorpusFormat2.Case("format2-changes-removed-not-in-base", "a removal of a path the base version does not have",
            PatchErrorCode.ManifestMalformed, $"removed file '{Ghost}' is not in the base version",
            w => w.Rewrite = bytes => AddPath(bytes, MessagePackManifest.KRemoved, Ghost)),
        HostileCorpusFormat2.Case("format2-changes-path-listed-twice", "a path both changed and removed (two readers could compose two trees)",
            PatchErrorCode.ManifestMalformed, "is listed twice",
            w => w.Rewrite = bytes => AddPath(bytes, MessagePackManifest.KRemoved, "readme.txt")),
        HostileCorpusFormat2.Case("format2-changes-added-twice", "the same path added twice",
            PatchErrorCode.ManifestMalformed, "lists 'data/levels/level3.dat' twice",
            w => w.Rewrite = bytes => AddPath(bytes, MessagePackManifest.KAdded, "data/levels/level3.dat")),
    ];

    public static IReadOnlySet<string> Names { get; } = Cases.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Adds <paramref name="path"/> to list <paramref name="key"/> (a file entry of 5 bytes with a made-up hash in
    /// <c>added</c>/<c>changed</c>, a path in <c>removed</c>), keeping the list sorted (a duplicate goes beside its twin).
    /// </summary>
    private static byte[] AddPath(byte[] manifest, string key, string path)
    {
        var r = new MessagePackReader(Get(manifest, key));
        var n = r.ReadArrayHeader();
        var items = new List<(string Path, byte[] Raw)>();
        for (var i = 0; i < n; i++)
        {
            var start = (int)r.Consumed;
            var peek = r.CreatePeekReader();
            if (peek.NextMessagePackType == MessagePackType.Array) peek.ReadArrayHeader();
            var itemPath = peek.ReadString()!;
            r.Skip();
            items.Add((itemPath, r.Sequence.Slice(start, r.Consumed - start).ToArray()));
        }

        var added = key == MessagePackManifest.KRemoved
            ? Value((ref MessagePackWriter w) => w.Write(path))
            : Value((ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(4);
                w.Write(path);
                w.Write(5);
                w.Write(new byte[32]);
                w.Write(0);
            });
        items.Add((path, added));
        var sorted = items.OrderBy(x => x.Path, StringComparer.Ordinal).ToList();
        return With(manifest, key, Value((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(sorted.Count);
            foreach (var (_, raw) in sorted) w.WriteRaw(raw);
        }));
    }
}
