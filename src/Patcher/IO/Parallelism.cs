using System.Runtime.ExceptionServices;

namespace Patching.IO;

/// <summary>
/// Parallel loops over files that fail the way a sequential loop would: the first <see cref="PatcherException"/>
/// (or cancellation) is rethrown as itself, not wrapped in an <see cref="AggregateException"/>, so callers'
/// catch clauses (rollback on failure) and launchers' switches on the error code keep working.
/// </summary>
internal static class Parallelism
{
    public static void ForEach<T>(IEnumerable<T> items, CancellationToken ct, Action<T> body)
    {
        try
        {
            Parallel.ForEach(items, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, body);
        }
        catch (AggregateException ex)
        {
            var inner = ex.Flatten().InnerExceptions;
            var first = inner.FirstOrDefault(e => e is PatcherException)
                ?? inner.FirstOrDefault(e => e is not OperationCanceledException)
                ?? inner[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
    }
}
