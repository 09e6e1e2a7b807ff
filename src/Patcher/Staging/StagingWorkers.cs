using Patching.IO;

namespace Patching.Staging;

/// <summary>How receiving and staging run their per-file work: in parallel, or in plan order where the caller needs one sequence.</summary>
internal static class StagingWorkers
{
    /// <summary>
    /// Staging waits on fsync far more than it computes: several files in flight keep the disk's queue full
    /// (docs/benchmarks.md has the measurement).
    /// </summary>
    private static readonly int IoWorkers = Math.Clamp(Environment.ProcessorCount * 4, 4, 16);

    /// <summary>
    /// Parallel over the files, unless the caller runs on a task scheduler that admits one task at a time (a UI
    /// thread's, or the power-loss simulation's): then a plain loop in plan order, so the sequence of file
    /// operations is the same on every run. <see cref="Parallel.ForEach{TSource}(IEnumerable{TSource}, ParallelOptions, Action{TSource})"/>
    /// would ignore that scheduler (its options default to the thread pool).
    /// </summary>
    public static void ForEach<T>(IReadOnlyList<T> items, CancellationToken ct, Action<T> body)
    {
        if (!Parallelism.OneTaskAtATime)
        {
            Parallelism.ForEachIo(items, IoWorkers, ct, body);
            return;
        }

        foreach (var item in items)
        {
            ct.ThrowIfCancellationRequested();
            body(item);
        }
    }
}
