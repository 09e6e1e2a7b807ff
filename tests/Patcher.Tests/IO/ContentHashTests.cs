using System.Security.Cryptography;
using Patching.IO;

namespace Patching.Tests.IO;

/// <summary>The copy that hashes while writing, on both of its paths (one thread, and read/hash overlapped with writes).</summary>
public sealed class ContentHashTests
{
    private static byte[] Data(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        return data;
    }

    [TestCase(3 << 20)]
    [TestCase((int)ContentHash.PipelineThreshold + (5 << 20) + 123)]
    public void CopyAndHash_DeclaredLength_CopiesEveryByteInOrderAndHashesThem(int length)
    {
        var data = Data(length);
        using var destination = new MemoryStream();

        var (copied, sha) = ContentHash.CopyAndHash(new MemoryStream(data), destination, length, null, CancellationToken.None);

        Assert.That(copied, Is.EqualTo(length));
        Assert.That(sha, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
        Assert.That(destination.ToArray(), Is.EqualTo(data));
    }

    [TestCase(3 << 20)]
    [TestCase((int)ContentHash.PipelineThreshold + (5 << 20))]
    public void CopyAndHash_SourceLongerThanDeclared_ReportsMoreAndWritesNoMoreThanDeclared(int declared)
    {
        var data = Data(declared + (3 << 20));
        using var destination = new MemoryStream();

        var (copied, _) = ContentHash.CopyAndHash(new MemoryStream(data), destination, declared, null, CancellationToken.None);

        Assert.That(copied, Is.GreaterThan(declared));
        Assert.That(destination.Length, Is.LessThanOrEqualTo(declared));
    }

    [Test]
    public void CopyAndHash_LargeCopyWhoseWriteFails_ThrowsTheWriteError()
    {
        var length = (int)ContentHash.PipelineThreshold * 2;
        using var destination = new FailingStream(failAfter: 5 << 20);

        var ex = Assert.Throws<IOException>(() => ContentHash.CopyAndHash(new MemoryStream(Data(length)), destination, length, null, CancellationToken.None));

        Assert.That(ex!.Message, Does.Contain("No space left"));
    }

    /// <summary>A destination that fails like a full disk once it has taken <c>failAfter</c> bytes.</summary>
    private sealed class FailingStream(long failAfter) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > failAfter) throw new IOException("No space left on device");
            base.Write(buffer, offset, count);
        }
    }
}
