using System.Net;
using System.Net.Http.Headers;
using Patching.Sources;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Patching;

/// <summary>How <see cref="HttpSource"/> talks to the server.</summary>
public sealed record HttpSourceOptions
{
    /// <summary>Longest one request may take, headers and body. Default 30 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts per object read, the first included (errors, timeouts, 5xx, a short or cut body). Default 5.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Delay before the first retry; each later one doubles it, with jitter. Default 200 ms.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Connections kept open to the server (also how many pieces download at once). Default 4.</summary>
    public int MaxConnections { get; init; } = 4;

    /// <summary>
    /// Largest average download rate, in bytes per second, over every connection of the source together (a quarter
    /// second's worth may come at once). 0, the default: no limit.
    /// </summary>
    public long MaxBytesPerSecond { get; init; }

    /// <summary>The clock the bandwidth limit is measured with. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// An <see cref="IUpdateSource"/> reading a release store served by a plain static web server or CDN over HTTP(S):
/// GET with a <c>Range</c> header for pieces, a per-request timeout, retries with exponential backoff on connection
/// failures, timeouts, 408/429/5xx answers and bodies of the wrong length, and an optional bandwidth limit. Each read is bounded: at most
/// <see cref="HttpSourceOptions.MaxAttempts"/> requests of at most <see cref="HttpSourceOptions.RequestTimeout"/> each.
/// </summary>
public sealed class HttpSource : IUpdateSource, IDisposable
{
    private readonly HttpClient _client;
    private readonly bool _ownsClient;
    private readonly Uri _base;
    private readonly ResiliencePipeline _pipeline;
    private readonly HttpSourceBandwidth? _bandwidth;
    private long _requests;
    private long _bytes;

    /// <summary>Reads the store at <paramref name="baseUri"/> (e.g. <c>https://cdn.example.com/game/</c>) with its own connection pool and default options.</summary>
    public HttpSource(Uri baseUri)
        : this(baseUri, null)
    {
    }

    /// <summary>Reads the store at <paramref name="baseUri"/> (e.g. <c>https://cdn.example.com/game/</c>) with its own connection pool.</summary>
    public HttpSource(Uri baseUri, HttpSourceOptions? options)
        : this(new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(1, (options ?? new HttpSourceOptions()).MaxConnections), AutomaticDecompression = DecompressionMethods.None }),
            baseUri, options, ownsClient: true)
    {
    }

    /// <summary>Reads the store at <paramref name="baseUri"/> through <paramref name="client"/>, which the caller keeps owning (and disposes).</summary>
    public HttpSource(HttpClient client, Uri baseUri, HttpSourceOptions? options = null)
        : this(client, baseUri, options, ownsClient: false)
    {
    }

    private HttpSource(HttpClient client, Uri baseUri, HttpSourceOptions? options, bool ownsClient)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(baseUri);
        Options = options ?? new HttpSourceOptions();
        if (Options.MaxAttempts < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxAttempts must be at least 1");
        if (Options.MaxBytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxBytesPerSecond must be 0 (no limit) or more");
        ArgumentNullException.ThrowIfNull(Options.TimeProvider);
        if (Options.MaxBytesPerSecond > 0) _bandwidth = new HttpSourceBandwidth(Options.MaxBytesPerSecond, Options.TimeProvider);
        _client = client;
        _ownsClient = ownsClient;
        if (ownsClient) _client.Timeout = Timeout.InfiniteTimeSpan; // the pipeline's per-attempt timeout bounds each request
        _base = baseUri.AbsoluteUri.EndsWith('/') ? baseUri : new Uri(baseUri.AbsoluteUri + "/");
        _pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = Options.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = Options.RetryDelay,
                ShouldHandle = new PredicateBuilder().Handle<HttpRequestException>().Handle<IOException>().Handle<TimeoutRejectedException>()
                    .Handle<TransientAnswerException>(),
            })
            .AddTimeout(Options.RequestTimeout)
            .Build();
    }

    /// <summary>The options in use.</summary>
    public HttpSourceOptions Options { get; }

    /// <summary>Requests sent so far (retries included).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Body bytes received so far (retries included).</summary>
    public long BytesReceived => Interlocked.Read(ref _bytes);

    /// <inheritdoc/>
    public Task<byte[]> ReadAsync(string name, long offset, int length, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return RunAsync(name, async (uri, ct) =>
        {
            if (length == 0) return [];
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Range = new RangeHeaderValue(offset, offset + length - 1);
            using var response = await SendAsync(request, name, ct).ConfigureAwait(false);
            // 206 with the range asked; a server that ignores Range answers 200 with the whole object.
            var skip = response.StatusCode == HttpStatusCode.OK ? offset : 0;
            var body = await ReadBodyAsync(response, skip + length, ct).ConfigureAwait(false);
            if (body.Length != skip + length)
                throw new TransientAnswerException($"'{name}' answered {body.Length - skip} bytes, {length} asked at {offset}");
            return skip == 0 ? body : body[(int)skip..];
        }, cancellationToken)!;
    }

    /// <inheritdoc/>
    public Task<byte[]?> ReadAllAsync(string name, int maxLength, CancellationToken cancellationToken) =>
        RunAsync<byte[]?>(name, async (uri, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            HttpResponseMessage response;
            try
            {
                response = await SendAsync(request, name, ct).ConfigureAwait(false);
            }
            catch (PatcherException ex) when (ex.Code == PatchErrorCode.SourceObjectMissing)
            {
                return null;
            }

            using (response)
            {
                if (response.Content.Headers.ContentLength is { } declared && declared > maxLength)
                    throw new PatcherException(PatchErrorCode.LimitExceeded, $"'{name}' is {declared} bytes, over the limit of {maxLength}", name);
                var body = await ReadBodyAsync(response, maxLength + 1L, ct).ConfigureAwait(false);
                if (body.Length > maxLength)
                    throw new PatcherException(PatchErrorCode.LimitExceeded, $"'{name}' is over the limit of {maxLength} bytes", name);
                if (response.Content.Headers.ContentLength is { } length && length != body.Length)
                    throw new TransientAnswerException($"'{name}' answered {body.Length} bytes of {length}");
                return body;
            }
        }, cancellationToken);

    /// <summary>Disposes the connection pool when this source made it.</summary>
    public void Dispose()
    {
        if (_ownsClient) _client.Dispose();
    }

    private async Task<T> RunAsync<T>(string name, Func<Uri, CancellationToken, Task<T>> attempt, CancellationToken ct)
    {
        var uri = new Uri(_base, SourceNames.Check(name));
        try
        {
            return await _pipeline.ExecuteAsync(async token => await attempt(uri, token).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TimeoutRejectedException or TransientAnswerException)
        {
            throw new PatcherException(PatchErrorCode.SourceUnavailable, $"reading '{name}' failed after {Options.MaxAttempts} attempts: {ex.Message}", uri.AbsoluteUri, ex);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string name, CancellationToken ct)
    {
        Interlocked.Increment(ref _requests);
        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return response;
        var status = (int)response.StatusCode;
        response.Dispose();
        if (status == 404 || status == 410)
            throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no '{name}' (HTTP {status})", request.RequestUri?.AbsoluteUri);
        if (status is 408 or 429 || status >= 500) throw new TransientAnswerException($"'{name}' answered HTTP {status}");
        throw new PatcherException(PatchErrorCode.SourceUnavailable, $"'{name}' answered HTTP {status}", request.RequestUri?.AbsoluteUri);
    }

    /// <summary>Reads at most <paramref name="max"/> bytes of the body (a longer body is cut there; the caller checks the length).</summary>
    private async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, long max, CancellationToken ct)
    {
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (buffer.Length < max)
        {
            var n = await body.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, max - buffer.Length)), ct).ConfigureAwait(false);
            if (n == 0) break;
            buffer.Write(chunk, 0, n);
            Interlocked.Add(ref _bytes, n);
            if (_bandwidth is not null) await _bandwidth.TakeAsync(n, ct).ConfigureAwait(false);
        }

        return buffer.ToArray();
    }

    /// <summary>An answer worth retrying: a 408, 429 or 5xx status, or a body of the wrong length.</summary>
    private sealed class TransientAnswerException(string message) : Exception(message);
}
