using System.Buffers;
using System.Text;
using MessagePack;

namespace Patching.Manifests;

/// <summary>
/// The MessagePack primitives every format 2 document (patch manifest, version manifest, journal record) is read and
/// written with. Reading is strict: a value of another type, an array longer than the bytes left could hold, a hash
/// that is not 32 bytes or a string that is not valid UTF-8 throws <see cref="MessagePackSerializationException"/> or
/// <see cref="DecoderFallbackException"/>, which the documents turn into <see cref="PatchErrorCode.ManifestMalformed"/>.
/// </summary>
internal static class MessagePackIo
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Whether <paramref name="ex"/> is what a strict read of damaged or hostile bytes throws.</summary>
    public static bool IsReadFailure(Exception ex) =>
        ex is MessagePackSerializationException or EndOfStreamException or OverflowException or DecoderFallbackException
            or ArgumentException or InvalidOperationException;

    public static void WriteStrings(ref MessagePackWriter w, IReadOnlyList<string> values)
    {
        w.WriteArrayHeader(values.Count);
        foreach (var v in values) w.Write(v);
    }

    public static void WriteHash(ref MessagePackWriter w, string hex) => w.Write(Convert.FromHexString(hex));

    public static void WriteHashOrNil(ref MessagePackWriter w, string hex, bool derivable)
    {
        if (derivable) w.WriteNil();
        else WriteHash(ref w, hex);
    }

    /// <summary>A target file as <c>[path, size, sha256, flags]</c>.</summary>
    public static void WriteFile(ref MessagePackWriter w, TargetFile f)
    {
        w.WriteArrayHeader(4);
        w.Write(f.Path);
        w.Write(f.Size);
        WriteHash(ref w, f.Sha256);
        w.Write(f.Executable ? 1 : 0);
    }

    public static void WriteFiles(ref MessagePackWriter w, IReadOnlyList<TargetFile> files)
    {
        w.WriteArrayHeader(files.Count);
        foreach (var f in files) WriteFile(ref w, f);
    }

    /// <summary>A target file written by <see cref="WriteFile"/>; flags other than 0 and 1 are refused.</summary>
    public static TargetFile ReadFile(ref MessagePackReader r)
    {
        ExpectArray(ref r, 4, "a file");
        var path = ReadString(ref r);
        var size = r.ReadInt64();
        var sha = ReadHash(ref r);
        var flags = r.ReadInt32();
        if (flags is not (0 or 1)) throw new MessagePackSerializationException($"file '{Printable(path)}' has unknown flags {flags}");
        return TargetFile.Whole(path, size, sha, flags == 1);
    }

    public static List<TargetFile> ReadFiles(ref MessagePackReader r)
    {
        var n = ReadArrayHeader(ref r);
        var files = new List<TargetFile>(n);
        for (var i = 0; i < n; i++) files.Add(ReadFile(ref r));
        return files;
    }

    /// <summary>A hash, or null for nil (a hash the reader derives).</summary>
    public static string? ReadHashOrNil(ref MessagePackReader r) => r.TryReadNil() ? null : ReadHash(ref r);

    public static List<string> ReadStrings(ref MessagePackReader r)
    {
        var n = ReadArrayHeader(ref r);
        var list = new List<string>(n);
        for (var i = 0; i < n; i++) list.Add(ReadString(ref r));
        return list;
    }

    /// <summary>An array header whose count is bounded by the bytes left (each element takes at least one): no huge allocation from a lying header.</summary>
    public static int ReadArrayHeader(ref MessagePackReader r)
    {
        var n = r.ReadArrayHeader();
        if (n > r.Sequence.Length - r.Consumed) throw new MessagePackSerializationException($"an array declares {n} elements, more than the bytes left");
        return n;
    }

    public static void ExpectArray(ref MessagePackReader r, int length, string what)
    {
        var n = r.ReadArrayHeader();
        if (n != length) throw new MessagePackSerializationException($"{what} has {n} fields, {length} expected");
    }

    /// <summary>A string, decoded strictly: invalid UTF-8 is refused, not replaced.</summary>
    public static string ReadString(ref MessagePackReader r)
    {
        if (r.NextMessagePackType != MessagePackType.String) throw new MessagePackSerializationException($"a string was expected, not {r.NextMessagePackType}");
        var seq = r.ReadStringSequence() ?? throw new MessagePackSerializationException("a string was expected, not nil");
        return StrictUtf8.GetString(seq.IsSingleSegment ? seq.FirstSpan : seq.ToArray());
    }

    public static string ReadHash(ref MessagePackReader r)
    {
        if (r.NextMessagePackType != MessagePackType.Binary) throw new MessagePackSerializationException($"a 32-byte hash was expected, not {r.NextMessagePackType}");
        var seq = r.ReadBytes() ?? throw new MessagePackSerializationException("a hash was expected, not nil");
        if (seq.Length != 32) throw new MessagePackSerializationException($"a hash has {seq.Length} bytes, 32 expected");
        return Convert.ToHexStringLower(seq.ToArray());
    }

    /// <summary>A binary value (a document nested in another), bounded by the bytes it came in.</summary>
    public static byte[] ReadBinary(ref MessagePackReader r)
    {
        if (r.NextMessagePackType != MessagePackType.Binary) throw new MessagePackSerializationException($"binary data was expected, not {r.NextMessagePackType}");
        var seq = r.ReadBytes() ?? throw new MessagePackSerializationException("binary data was expected, not nil");
        return seq.ToArray();
    }

    public static DateTimeOffset ReadTime(ref MessagePackReader r) => DateTimeOffset.FromUnixTimeSeconds(r.ReadInt64());

    /// <summary>Reads the next map key, refusing one seen before in the same map.</summary>
    public static string ReadKey(ref MessagePackReader r, HashSet<string> seen, string? path)
    {
        var key = ReadString(ref r);
        if (!seen.Add(key)) throw Malformed($"key '{Printable(key)}' appears twice", path);
        return key;
    }

    /// <summary>Refuses a missing value of a required key.</summary>
    public static T Required<T>(T? value, string key, string? path) where T : class =>
        value ?? throw Malformed($"manifest lacks the required key '{key}'", path);

    public static PatcherException Malformed(string message, string? path) => new(PatchErrorCode.ManifestMalformed, message, path);

    public static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
