namespace Patching.Tests.TestHelpers;

/// <summary>
/// Runs engine code against a <see cref="SimulatedFileSystem"/> on one thread, in a fixed order, so the k-th
/// mutating call is the same call on every run and a seed reproduces a failure exactly.
/// </summary>
/// <remarks>
/// The engine's only parallel loop that mutates the disk (staging, in <c>StagingWorkers</c>) runs as a plain loop in plan
/// order when the current task scheduler admits one task at a time; inside a task on this scheduler (maximum
/// concurrency 1, tasks run inline where they are queued) it does. (<c>Parallel.ForEach</c> itself would ignore the
/// scheduler: its options default to the thread pool.) Read-only parallel loops (hash checks) may still run on
/// the pool; reads are not crash points.
/// </remarks>
internal static class SimulatedFsRunner
{
    public static T Run<T>(Func<T> action) => SerialScheduler.Run(action);

    /// <summary>
    /// Runs <paramref name="action"/>, which must end in the simulated power cut. Returns normally only when the
    /// engine unwound with nothing but <see cref="SimulatedCrashException"/>: had it caught the crash and carried on
    /// (rolled back, written the journal), the experiment would not model a dead process.
    /// </summary>
    public static void RunUntilCrash(SimulatedFileSystem fs, Action action)
    {
        Exception? thrown = null;
        try
        {
            Run(() =>
            {
                action();
                return 0;
            });
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        if (!fs.Crashed) throw new InvalidOperationException("the crash point was never reached", thrown);
        if (thrown is null) throw new InvalidOperationException("the engine returned normally after the simulated power loss");
        if (!IsCrash(thrown)) throw new InvalidOperationException("the engine turned the simulated power loss into another exception", thrown);
    }

    private static bool IsCrash(Exception ex) => ex switch
    {
        SimulatedCrashException => true,
        AggregateException ae => ae.Flatten().InnerExceptions.All(IsCrash),
        _ => false,
    };
}
