using System.Runtime.ExceptionServices;

namespace Patching.IO;

/// <summary>
/// Parallel loops over files that fail the way a sequential loop would: the first <see cref="PatcherException"/>
/// (or cancellation) is rethrown as itself, not wrapped in an <see cref="AggregateException"/>, so callers'
/// catch clauses (rollback on failure) and launchers' switches on the error code keep working.
/// </summary>
internal static class Parallelism
{
    /// <summary>
    /// Whether the caller runs on a task scheduler that admits one task at a time (a UI thread's, or the power-loss
    /// simulation's, which needs the same sequence of file operations on every run): work that would go parallel or to
    /// the background is done inline, in order, instead.
    /// </summary>
    public static bool OneTaskAtATime => TaskScheduler.Current.MaximumConcurrencyLevel == 1;

    /// <summary>CPU-bound work (hashing): one worker per core.</summary>
    public static void ForEach<T>(IEnumerable<T> items, CancellationToken ct, Action<T> body)
    {
        try
        {
            Parallel.ForEach(items, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, body);
        }
        catch (AggregateException ex)
        {
            Rethrow(ex.Flatten().InnerExceptions);
            throw;
        }
    }

    /// <summary>
    /// Work that mostly waits on the disk (writing and fsyncing staged files): more workers than cores, on
    /// dedicated threads, so several fsyncs are in flight at once without starving the thread pool (which
    /// only grows slowly when its threads block). The first failure stops the other workers.
    /// </summary>
    public static void ForEachIo<T>(IReadOnlyList<T> items, int workers, CancellationToken ct, Action<T> body)
    {
        var next = -1;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        void Work()
        {
            try
            {
                int i;
                while (failures.IsEmpty && (i = Interlocked.Increment(ref next)) < items.Count)
                {
                    ct.ThrowIfCancellationRequested();
                    body(items[i]);
                }
            }
            catch (Exception ex)
            {
                failures.Enqueue(ex);
            }
        }

        var threads = Enumerable.Range(0, Math.Max(1, Math.Min(workers, items.Count)))
            .Select(_ => Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))
            .ToArray();
        Task.WaitAll(threads, CancellationToken.None);
        if (!failures.IsEmpty) Rethrow(failures.ToList());
    }

    private static void Rethrow(IReadOnlyList<Exception> inner)
    {
        var first = inner.FirstOrDefault(e => e is PatcherException)
            ?? inner.FirstOrDefault(e => e is not OperationCanceledException)
            ?? inner[0];
        ExceptionDispatchInfo.Capture(first).Throw();
    }
}
