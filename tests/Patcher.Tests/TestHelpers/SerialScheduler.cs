namespace Patching.Tests.TestHelpers;

/// <summary>A task scheduler that admits one task at a time and runs it inline, as a UI thread's or the power-loss simulation's does.</summary>
internal sealed class SerialScheduler : TaskScheduler
{
    public static readonly SerialScheduler Instance = new();

    public override int MaximumConcurrencyLevel => 1;

    /// <summary>Runs <paramref name="body"/> as a task on this scheduler and waits for it, rethrowing its exception as itself.</summary>
    public static T Run<T>(Func<T> body) =>
        Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.None, Instance).GetAwaiter().GetResult();

    /// <inheritdoc cref="Run{T}(Func{T})"/>
    public static void Run(Action body) => Run(() =>
    {
        body();
        return 0;
    });

    protected override void QueueTask(Task task) => TryExecuteTask(task);

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => [];
}
