using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Patching.Tests.TestHelpers;

/// <summary>What a fault hook decided for one request.</summary>
internal enum FaultAction
{
    /// <summary>Serve the file normally.</summary>
    None,
    /// <summary>The hook wrote its own (faulty) answer.</summary>
    Handled,
}

/// <summary>
/// A release store served over HTTP on 127.0.0.1 as static files with single-range <c>Range</c> support (206 with
/// <c>Content-Range</c>), counting requests and bytes per path, with a hook that may answer a request with a fault
/// instead. Built on <see cref="HttpListener"/> (in the base framework): the ASP.NET Core shared framework would replace
/// the Microsoft.Extensions assemblies in the test output, which the child processes the crash tests start need.
/// </summary>
internal sealed class StoreServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly List<Task> _handlers = [];
    private Task _loop = Task.CompletedTask;
    private long _bodyBytes;

    private StoreServer(string root) => Root = Path.GetFullPath(root);

    public string Root { get; }
    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Called for every request with its path (no leading slash) and how many times that path was asked (1 = first).</summary>
    public Func<HttpListenerContext, string, int, Task<FaultAction>>? Fault { get; set; }

    public int Requests(string path) => _requests.GetValueOrDefault(path);
    /// <summary>Requests for pieces (compressed <c>pieces/</c>, or raw <c>blobs/</c> of a store without indexes).</summary>
    public int BlobRequests => _requests.Where(kv => IsPiece(kv.Key)).Sum(kv => kv.Value);
    public IReadOnlyDictionary<string, int> RequestCounts => _requests;
    /// <summary>Body bytes the server answered for content (pieces, and deltas' manifests, signatures and payloads), normal answers only.</summary>
    public long BlobBytesServed => Interlocked.Read(ref _bodyBytes);

    /// <summary>Whether a path names a piece of the store.</summary>
    public static bool IsPiece(string path) => path.StartsWith("pieces/", StringComparison.Ordinal) || path.StartsWith("blobs/", StringComparison.Ordinal);

    /// <summary>Whether a path names a file of a delta.</summary>
    public static bool IsDelta(string path) => path.Contains("/deltas/", StringComparison.Ordinal);

    public static Task<StoreServer> StartAsync(string root)
    {
        var server = new StoreServer(root);
        // A free port: bound once by the system, then given to the listener (which cannot bind port 0 itself).
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            server.BaseUri = new Uri($"http://127.0.0.1:{((IPEndPoint)probe.LocalEndpoint).Port}/");
            probe.Stop();
        }

        server._listener.Prefixes.Add(server.BaseUri.AbsoluteUri);
        server._listener.Start();
        server._loop = Task.Run(server.AcceptLoop);
        return Task.FromResult(server);
    }

    /// <summary>The bytes of the file a path names in the store.</summary>
    public byte[] FileBytes(string path) => File.ReadAllBytes(Path.Join(Root, path));

    private async Task AcceptLoop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            lock (_handlers) _handlers.Add(Task.Run(() => Handle(context)));
        }
    }

    private async Task Handle(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            var path = Uri.UnescapeDataString(context.Request.Url!.AbsolutePath.TrimStart('/'));
            var n = _requests.AddOrUpdate(path, 1, (_, v) => v + 1);
            if (Fault is { } fault && await fault(context, path, n) == FaultAction.Handled)
            {
                response.Close();
                return;
            }

            var full = Path.GetFullPath(Path.Join(Root, path));
            if (path.Length == 0 || !full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
            {
                response.StatusCode = 404;
                response.Close();
                return;
            }

            var bytes = await File.ReadAllBytesAsync(full);
            var (start, length) = (0L, (long)bytes.Length);
            if (Range(context.Request.Headers["Range"], bytes.Length) is { } range)
            {
                (start, length) = range;
                response.StatusCode = 206;
                response.AddHeader("Content-Range", $"bytes {start}-{start + length - 1}/{bytes.Length}");
            }

            response.ContentType = "application/octet-stream";
            response.ContentLength64 = length;
            await response.OutputStream.WriteAsync(bytes.AsMemory((int)start, (int)length));
            if (IsPiece(path) || IsDelta(path)) Interlocked.Add(ref _bodyBytes, length);
            response.Close();
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The client went away, or a fault hook aborted the answer.
        }
    }

    /// <summary>A single <c>bytes=a-b</c> (or <c>a-</c>) range within the file, or null to answer the whole file.</summary>
    private static (long Start, long Length)? Range(string? header, long size)
    {
        if (header is null || !header.StartsWith("bytes=", StringComparison.Ordinal) || header.Contains(',', StringComparison.Ordinal)) return null;
        var parts = header["bytes=".Length..].Split('-');
        if (parts.Length != 2 || !long.TryParse(parts[0], out var start) || start >= size) return null;
        var end = parts[1].Length == 0 ? size - 1 : long.TryParse(parts[1], out var e) ? Math.Min(e, size - 1) : -1;
        return end < start ? null : (start, end - start + 1);
    }

    /// <summary>Writes the first <paramref name="count"/> bytes of an answer declared as <paramref name="declared"/> bytes, then drops the connection.</summary>
    public static async Task DropAfter(HttpListenerContext context, byte[] bytes, int count)
    {
        context.Response.ContentLength64 = bytes.Length;
        await context.Response.OutputStream.WriteAsync(bytes.AsMemory(0, count));
        await context.Response.OutputStream.FlushAsync();
        context.Response.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _loop;
        Task[] handlers;
        lock (_handlers) handlers = [.. _handlers];
        await Task.WhenAll(handlers);
        _listener.Close();
    }
}
