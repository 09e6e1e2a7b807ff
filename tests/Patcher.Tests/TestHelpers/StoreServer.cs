using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;

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
/// A release store served by Kestrel on 127.0.0.1 (a free port) as plain static files with Range support, counting
/// requests and bytes per path, with a hook that may answer a request with a fault instead.
/// </summary>
internal sealed class StoreServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private long _bodyBytes;

    private StoreServer(WebApplication app, string root)
    {
        _app = app;
        Root = root;
    }

    public string Root { get; }
    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Called for every request with its path (no leading slash) and how many times that path was asked (1 = first).</summary>
    public Func<HttpContext, string, int, Task<FaultAction>>? Fault { get; set; }

    public int Requests(string path) => _requests.GetValueOrDefault(path);
    public int BlobRequests => _requests.Where(kv => kv.Key.StartsWith("blobs/", StringComparison.Ordinal)).Sum(kv => kv.Value);
    public IReadOnlyDictionary<string, int> RequestCounts => _requests;
    /// <summary>Body bytes the server declared for the pieces it answered (faulty answers included).</summary>
    public long BlobBytesServed => Interlocked.Read(ref _bodyBytes);

    public static async Task<StoreServer> StartAsync(string root)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new StoreServer(app, root);
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path.Value!.TrimStart('/');
            var n = server._requests.AddOrUpdate(path, 1, (_, v) => v + 1);
            if (server.Fault is { } fault && await fault(context, path, n) == FaultAction.Handled) return;
            await next(context);
            if (path.StartsWith("blobs/", StringComparison.Ordinal)) Interlocked.Add(ref server._bodyBytes, context.Response.ContentLength ?? 0);
        });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = new PhysicalFileProvider(root, Microsoft.Extensions.FileProviders.Physical.ExclusionFilters.None),
            ServeUnknownFileTypes = true,
            DefaultContentType = "application/octet-stream",
        });
        await app.StartAsync();
        var address = app.Services.GetService(typeof(IServer)) is IServer s ? s.Features.Get<IServerAddressesFeature>()!.Addresses.First() : throw new InvalidOperationException();
        server.BaseUri = new Uri(address + "/");
        return server;
    }

    /// <summary>The bytes of the file a path names in the store.</summary>
    public byte[] FileBytes(string path) => File.ReadAllBytes(Path.Join(Root, path));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
