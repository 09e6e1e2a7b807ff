using System.Text.Json;

namespace Patching.Manifests;

/// <summary>
/// Reads format 1 manifest bytes into the model with one forward-only pass of <see cref="Utf8JsonReader"/>.
/// </summary>
/// <remarks>
/// <para>
/// Why not <see cref="JsonSerializer"/> with the source-generated context (which still writes manifests): reading a
/// 100k-file manifest (48 MiB) took it 370–810 ms, about three times what tokenizing the same bytes and allocating
/// every string costs, and that was a third of a 100k-file apply's preflight (docs/benchmarks.md). This reader
/// also reuses the file's hash string for its single part, which halves the hash strings a format 1 manifest makes.
/// </para>
/// <para>
/// It is at least as strict as the serializer was (a test compares both on the fixtures and on damaged copies):
/// property names are matched exactly, an unknown property, a missing required one, a null where the format has no
/// null, a wrong token type, a number that is not an integer, trailing data, comments and trailing commas are all
/// refused. One difference is deliberate: a property named twice in one object is refused, where the serializer
/// kept the last value. Two readers that disagree on which duplicate counts could read different content from the
/// same signed bytes.
/// </para>
/// A failure is a <see cref="JsonException"/> naming the place (<c>$.files[3].size</c>), or an
/// <see cref="InvalidOperationException"/> from the reader for text that is not valid UTF-8 or escapes a lone surrogate;
/// the codec maps both.
/// </remarks>
internal static class ManifestReader
{
    private delegate T ItemReader<out T>(ref Utf8JsonReader r, Where at);

    /// <summary>Where in the manifest a value is (<c>$.files[3].parts[0]</c>), formatted only when an error names it.</summary>
    private readonly record struct Where(string? List, int Index = -1, int Part = -1)
    {
        public static readonly Where Root = new(null);

        public Where InList(int part) => this with { Part = part };

        public override string ToString() =>
            List is null ? "$" : Index < 0 ? $"$.{List}" : Part < 0 ? $"$.{List}[{Index}]" : $"$.{List}[{Index}].parts[{Part}]";
    }

    public static Manifest Read(ReadOnlySpan<byte> bytes)
    {
        var r = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 16 });
        var root = Where.Root;
        if (Next(ref r) != JsonTokenType.StartObject) throw Error(root, "is not an object");

        int? format = null;
        string? product = null, version = null, fromVersion = null;
        DateTimeOffset? created = null, expires = null;
        List<string>? directories = null, baseDirectories = null;
        List<TargetFile>? files = null;
        List<BaseFile>? baseFiles = null;
        List<BlobEntry>? blobs = null;
        var seen = 0;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (Is(ref r, "format"u8, 0, ref seen, root)) format = Int32(ref r, root, "format");
            else if (Is(ref r, "product"u8, 1, ref seen, root)) product = String(ref r, root, "product");
            else if (Is(ref r, "version"u8, 2, ref seen, root)) version = String(ref r, root, "version");
            else if (Is(ref r, "fromVersion"u8, 3, ref seen, root)) fromVersion = NullableString(ref r, root, "fromVersion");
            else if (Is(ref r, "created"u8, 4, ref seen, root)) created = Date(ref r, root, "created") ?? throw Error(root, "created", "is null");
            else if (Is(ref r, "expires"u8, 5, ref seen, root)) expires = Date(ref r, root, "expires");
            else if (Is(ref r, "directories"u8, 6, ref seen, root)) directories = List(ref r, "directories", StringItem);
            else if (Is(ref r, "files"u8, 7, ref seen, root)) files = List(ref r, "files", FileItem);
            else if (Is(ref r, "base"u8, 8, ref seen, root)) baseFiles = List(ref r, "base", BaseItem);
            else if (Is(ref r, "baseDirectories"u8, 9, ref seen, root)) baseDirectories = List(ref r, "baseDirectories", StringItem);
            else if (Is(ref r, "blobs"u8, 10, ref seen, root)) blobs = List(ref r, "blobs", BlobItem);
            else throw Unknown(ref r, root);
        }

        // The end of the root object must be the end of the data (whitespace aside): Read throws on anything else.
        if (r.Read()) throw Error(root, "is followed by more data");

        // The codec checked the number before calling; this keeps the reader whole on its own.
        if (format != Manifest.CurrentFormat) throw format is null ? Missing(root, "format") : Error(root, "format", $"is {format}, not {Manifest.CurrentFormat}");
        return new Manifest
        {
            Format = Manifest.CurrentFormat,
            Product = product ?? throw Missing(root, "product"),
            Version = version ?? throw Missing(root, "version"),
            FromVersion = fromVersion,
            Created = created ?? throw Missing(root, "created"),
            Expires = expires,
            Directories = directories ?? throw Missing(root, "directories"),
            Files = files ?? throw Missing(root, "files"),
            Base = baseFiles ?? throw Missing(root, "base"),
            BaseDirectories = baseDirectories ?? [],
            Blobs = blobs ?? throw Missing(root, "blobs"),
        };
    }

    private static TargetFile FileItem(ref Utf8JsonReader r, Where at)
    {
        ExpectObject(ref r, at);
        string? path = null, sha = null;
        long? size = null;
        var executable = false;
        List<ContentPart>? parts = null;
        var seen = 0;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (Is(ref r, "path"u8, 0, ref seen, at)) path = String(ref r, at, "path");
            else if (Is(ref r, "size"u8, 1, ref seen, at)) size = Int64(ref r, at, "size");
            else if (Is(ref r, "sha256"u8, 2, ref seen, at)) sha = String(ref r, at, "sha256");
            else if (Is(ref r, "executable"u8, 3, ref seen, at)) executable = Bool(ref r, at, "executable");
            else if (Is(ref r, "parts"u8, 4, ref seen, at)) parts = Parts(ref r, at, sha);
            else throw Unknown(ref r, at);
        }

        return new TargetFile
        {
            Path = path ?? throw Missing(at, "path"),
            Size = size ?? throw Missing(at, "size"),
            Sha256 = sha ?? throw Missing(at, "sha256"),
            Executable = executable,
            Parts = parts ?? throw Missing(at, "parts"),
        };
    }

    /// <summary>A file's parts. A part whose hash equals the file's (read before it, as the writer orders them) shares its string.</summary>
    private static List<ContentPart> Parts(ref Utf8JsonReader r, Where file, string? fileSha)
    {
        if (Next(ref r) != JsonTokenType.StartArray) throw Error(file, "parts", r.TokenType == JsonTokenType.Null ? "is null" : "is not a list");
        var parts = new List<ContentPart>(1);
        while (Next(ref r) != JsonTokenType.EndArray)
        {
            var at = file.InList(parts.Count);
            if (r.TokenType == JsonTokenType.Null) throw Error(at, "is a null entry in a list");
            ExpectObject(ref r, at);
            string? sha = null;
            long? size = null;
            var seen = 0;
            while (Next(ref r) == JsonTokenType.PropertyName)
            {
                if (Is(ref r, "sha256"u8, 0, ref seen, at))
                {
                    sha = Next(ref r) == JsonTokenType.String && fileSha is not null && r.ValueTextEquals(fileSha) ? fileSha : CurrentString(ref r, at, "sha256");
                }
                else if (Is(ref r, "size"u8, 1, ref seen, at)) size = Int64(ref r, at, "size");
                else throw Unknown(ref r, at);
            }

            parts.Add(new ContentPart
            {
                Sha256 = sha ?? throw Missing(at, "sha256"),
                Size = size ?? throw Missing(at, "size"),
            });
        }

        return parts;
    }

    private static BaseFile BaseItem(ref Utf8JsonReader r, Where at)
    {
        ExpectObject(ref r, at);
        string? path = null, sha = null;
        long? size = null;
        var seen = 0;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (Is(ref r, "path"u8, 0, ref seen, at)) path = String(ref r, at, "path");
            else if (Is(ref r, "size"u8, 1, ref seen, at)) size = Int64(ref r, at, "size");
            else if (Is(ref r, "sha256"u8, 2, ref seen, at)) sha = String(ref r, at, "sha256");
            else throw Unknown(ref r, at);
        }

        return new BaseFile
        {
            Path = path ?? throw Missing(at, "path"),
            Size = size ?? throw Missing(at, "size"),
            Sha256 = sha ?? throw Missing(at, "sha256"),
        };
    }

    private static BlobEntry BlobItem(ref Utf8JsonReader r, Where at)
    {
        ExpectObject(ref r, at);
        string? sha = null, compression = null;
        long? size = null, stored = null;
        var seen = 0;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (Is(ref r, "sha256"u8, 0, ref seen, at)) sha = String(ref r, at, "sha256");
            else if (Is(ref r, "size"u8, 1, ref seen, at)) size = Int64(ref r, at, "size");
            else if (Is(ref r, "compression"u8, 2, ref seen, at)) compression = String(ref r, at, "compression");
            else if (Is(ref r, "storedSize"u8, 3, ref seen, at)) stored = Int64(ref r, at, "storedSize");
            else throw Unknown(ref r, at);
        }

        return new BlobEntry
        {
            Sha256 = sha ?? throw Missing(at, "sha256"),
            Size = size ?? throw Missing(at, "size"),
            Compression = compression ?? throw Missing(at, "compression"),
            StoredSize = stored ?? throw Missing(at, "storedSize"),
        };
    }

    private static string StringItem(ref Utf8JsonReader r, Where at) => CurrentString(ref r, at, null);

    /// <summary>A list property's value: <c>[ item, ... ]</c>, where no item may be null.</summary>
    private static List<T> List<T>(ref Utf8JsonReader r, string list, ItemReader<T> item)
    {
        if (Next(ref r) != JsonTokenType.StartArray) throw Error(new Where(list), r.TokenType == JsonTokenType.Null ? "is null" : "is not a list");
        var result = new List<T>();
        while (Next(ref r) != JsonTokenType.EndArray)
        {
            var at = new Where(list, result.Count);
            if (r.TokenType == JsonTokenType.Null) throw Error(at, "is a null entry in a list");
            result.Add(item(ref r, at));
        }

        return result;
    }

    private static JsonTokenType Next(ref Utf8JsonReader r) => r.Read() ? r.TokenType : throw new JsonException("the data ends inside the manifest");

    /// <summary>
    /// True when the current property name is <paramref name="name"/>; then it moves on to the value. A name seen
    /// before in this object (bit <paramref name="bit"/> of <paramref name="seen"/>) is refused.
    /// </summary>
    private static bool Is(ref Utf8JsonReader r, ReadOnlySpan<byte> name, int bit, ref int seen, Where at)
    {
        if (!r.ValueTextEquals(name)) return false;
        if ((seen & (1 << bit)) != 0) throw Error(at, $"names {r.GetString()} twice");
        seen |= 1 << bit;
        return true;
    }

    private static void ExpectObject(ref Utf8JsonReader r, Where at)
    {
        if (r.TokenType != JsonTokenType.StartObject) throw Error(at, "is not an object");
    }

    private static string String(ref Utf8JsonReader r, Where at, string property)
    {
        Next(ref r);
        return CurrentString(ref r, at, property);
    }

    private static string CurrentString(ref Utf8JsonReader r, Where at, string? property) => r.TokenType switch
    {
        JsonTokenType.String => r.GetString()!,
        JsonTokenType.Null => throw Error(at, property, "is null"),
        _ => throw Error(at, property, "is not a string"),
    };

    private static string? NullableString(ref Utf8JsonReader r, Where at, string property) =>
        Next(ref r) == JsonTokenType.Null ? null : CurrentString(ref r, at, property);

    private static int Int32(ref Utf8JsonReader r, Where at, string property) =>
        Next(ref r) == JsonTokenType.Number && r.TryGetInt32(out var v) ? v : throw Error(at, property, "is not an integer");

    private static long Int64(ref Utf8JsonReader r, Where at, string property) =>
        Next(ref r) == JsonTokenType.Number && r.TryGetInt64(out var v) ? v : throw Error(at, property, "is not an integer");

    private static bool Bool(ref Utf8JsonReader r, Where at, string property) => Next(ref r) switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw Error(at, property, "is not true or false"),
    };

    private static DateTimeOffset? Date(ref Utf8JsonReader r, Where at, string property) => Next(ref r) switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String when r.TryGetDateTimeOffset(out var v) => v,
        _ => throw Error(at, property, "is not an ISO 8601 date and time"),
    };

    private static JsonException Error(Where at, string what) => new($"{at} {what}");

    private static JsonException Error(Where at, string? property, string what) =>
        new(property is null ? $"{at} {what}" : $"{at}.{property} {what}");

    private static JsonException Missing(Where at, string property) => new($"{at} lacks the required property '{property}'");

    private static JsonException Unknown(ref Utf8JsonReader r, Where at) => new($"{at} has a property the format does not define: '{r.GetString()}'");
}
