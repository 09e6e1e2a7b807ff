using System.Buffers;
using MessagePack;

namespace Patching.Tests.TestHelpers;

/// <summary>Rewrites a MessagePack map one entry at a time, to build manifests that differ from a valid one in one place.</summary>
internal static class MessagePackEdit
{
    public delegate void Write(ref MessagePackWriter w);

    /// <summary>The top map of <paramref name="bytes"/> as (key, raw value) pairs.</summary>
    public static List<(string Key, byte[] Value)> Entries(byte[] bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadMapHeader();
        var list = new List<(string, byte[])>();
        for (var i = 0; i < n; i++)
        {
            var key = r.ReadString()!;
            var start = (int)r.Consumed;
            r.Skip();
            list.Add((key, bytes[start..(int)r.Consumed]));
        }

        return list;
    }

    /// <summary>A map of <paramref name="entries"/>, in their order.</summary>
    public static byte[] Emit(IEnumerable<(string Key, byte[] Value)> entries)
    {
        var list = entries.ToList();
        return Value((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(list.Count);
            foreach (var (key, value) in list)
            {
                w.Write(key);
                w.WriteRaw(value);
            }
        });
    }

    /// <summary>The bytes <paramref name="write"/> writes.</summary>
    public static byte[] Value(Write write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        write(ref w);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><paramref name="bytes"/> with the value of <paramref name="key"/> replaced by <paramref name="value"/>.</summary>
    public static byte[] With(byte[] bytes, string key, byte[] value) => Emit(Entries(bytes).Select(e => e.Key == key ? (e.Key, value) : e));

    /// <summary>The raw value of <paramref name="key"/> in the top map of <paramref name="bytes"/>.</summary>
    public static byte[] Get(byte[] bytes, string key) => Entries(bytes).Single(e => e.Key == key).Value;
}
