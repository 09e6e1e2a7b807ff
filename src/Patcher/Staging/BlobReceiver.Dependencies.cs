using Patching.Manifests;

namespace Patching.Staging;

/// <summary>
/// Contents whose deltas read windows of other contents the patch rebuilds (<see cref="RefWindow.Content"/>). The
/// validator lets a window name only an earlier recipe, so the references form no cycle. The recipes run in an order
/// where each comes after every content it reads (largest first among those whose references are already dispatched),
/// and a recipe that reads a content waits until that content is rebuilt, verified and fsynced. A worker pool that takes
/// recipes in this order cannot deadlock: a recipe waits only on recipes taken before it, and the first ones taken wait
/// on none. A referenced content that no file needs placed (a file a resumed transaction already staged, or one the base
/// holds whole) is rebuilt all the same rather than read from where it lies: one way of obtaining every window.
/// </summary>
internal sealed partial class BlobReceiver
{
    /// <summary>
    /// The recipes to run: those some file needs placed (<paramref name="placed"/>) and every content they read,
    /// directly or through others, in dispatch order.
    /// </summary>
    internal static List<ContentRecipe> InDependencyOrder(IReadOnlyList<ContentRecipe> all, Func<string, bool> placed)
    {
        var bySha = new Dictionary<string, (ContentRecipe Recipe, int Index)>(StringComparer.Ordinal);
        for (var i = 0; i < all.Count; i++) bySha.TryAdd(all[i].Sha256, (all[i], i));
        var included = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<ContentRecipe>(all.Where(r => placed(r.Sha256)));
        while (pending.TryPop(out var r))
        {
            if (!included.Add(r.Sha256)) continue;
            foreach (var read in ReadsFrom(r))
                if (bySha.TryGetValue(read, out var source)) pending.Push(source.Recipe);
        }

        // Kahn's order, largest first among the recipes whose references are all dispatched.
        var waitingOn = new Dictionary<string, int>(StringComparer.Ordinal);
        var readers = new Dictionary<string, List<ContentRecipe>>(StringComparer.Ordinal);
        var ready = new PriorityQueue<ContentRecipe, (long, int)>();
        foreach (var sha in included)
        {
            var r = bySha[sha].Recipe;
            var reads = ReadsFrom(r).Where(included.Contains).ToList();
            waitingOn[sha] = reads.Count;
            foreach (var read in reads)
            {
                if (!readers.TryGetValue(read, out var list)) readers[read] = list = [];
                list.Add(r);
            }

            if (reads.Count == 0) ready.Enqueue(r, (-r.Size, bySha[sha].Index));
        }

        var order = new List<ContentRecipe>(included.Count);
        while (ready.TryDequeue(out var r, out _))
        {
            order.Add(r);
            foreach (var reader in readers.GetValueOrDefault(r.Sha256, []))
                if (--waitingOn[reader.Sha256] == 0) ready.Enqueue(reader, (-reader.Size, bySha[reader.Sha256].Index));
        }

        if (order.Count != included.Count) throw new PatcherException(PatchErrorCode.DeltaReferenceNotEarlier, "the contents' reference windows form a cycle");
        return order;
    }

    /// <summary>The fan-out folders of the incoming directory the rebuilt contents no file needs placed go to (the others' exist).</summary>
    private void CreateFanOuts(IReadOnlyList<ContentRecipe> recipes, IReadOnlyDictionary<string, bool> placed)
    {
        var fans = placed.Keys.Select(ReceivedBlobs.FanOut).ToHashSet(StringComparer.Ordinal);
        foreach (var fan in recipes.Select(r => ReceivedBlobs.FanOut(r.Sha256)))
            if (fans.Add(fan)) fs.CreateDirectory(Path.Join(incomingDir, fan));
    }

    /// <summary>The contents <paramref name="recipe"/>'s windows lie in, each once.</summary>
    private static IEnumerable<string> ReadsFrom(ContentRecipe recipe) =>
        recipe.Ops.SelectMany(o => o.Refs).Select(w => w.Content).OfType<string>().Distinct(StringComparer.Ordinal);

    /// <summary>
    /// One completion per content that another recipe reads: set to the content's file once it is durable, or faulted
    /// with the content's own failure, so that its readers fail with that error instead of waiting for ever.
    /// </summary>
    private sealed class ContentCompletions
    {
        private readonly Dictionary<string, TaskCompletionSource<string>> _done = new(StringComparer.Ordinal);

        public ContentCompletions(IReadOnlyList<ContentRecipe> recipes)
        {
            foreach (var read in recipes.SelectMany(ReadsFrom)) _done.TryAdd(read, new TaskCompletionSource<string>());
        }

        /// <summary>Runs <paramref name="rebuild"/> of content <paramref name="sha256"/> into <paramref name="path"/>, then completes or fails its readers' wait.</summary>
        public void Run(string sha256, string path, Action rebuild)
        {
            try
            {
                rebuild();
            }
            catch (Exception ex)
            {
                _done.GetValueOrDefault(sha256)?.TrySetException(ex);
                throw;
            }

            _done.GetValueOrDefault(sha256)?.TrySetResult(path);
        }

        /// <summary>Waits for a content to be durable and returns its file; rethrows its failure, or stops at cancellation.</summary>
        public string Wait(string sha256, CancellationToken ct)
        {
            if (!_done.TryGetValue(sha256, out var done))
                throw new PatcherException(PatchErrorCode.DeltaReferenceNotEarlier, $"content {sha256} is read as a reference but not rebuilt", sha256);
            try
            {
                done.Task.Wait(ct);
            }
            catch (AggregateException)
            {
                // Rethrown below as the content's own exception, unwrapped.
            }

            return done.Task.GetAwaiter().GetResult();
        }
    }

}
