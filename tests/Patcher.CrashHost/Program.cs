// A minimal process for out-of-process crash tests: it runs one Patcher operation (an apply of a patch directory, an
// update from a release store directory, or a recovery) and exits 0, or prints
// the error code and exits 3. The crash harness starts it with PATCHER_TEST_CRASH_AT=N so that the N-th
// file operation or journal step kills it with SIGKILL.
using Patching;

try
{
    switch (args)
    {
        case ["apply", var install, var patch, var trustFile, var strategy]:
            var options = new PatcherOptions
            {
                TrustedKeys = [File.ReadAllText(trustFile)],
                // "swap-link": the swap strategy with the patch's blobs hard-linked instead of copied.
                Strategy = Enum.Parse<CommitStrategy>(strategy.Replace("-link", "", StringComparison.Ordinal), ignoreCase: true),
                LinkPatchBlobs = strategy.EndsWith("-link", StringComparison.Ordinal),
            };
            var result = Patcher.Apply(install, patch, options);
            // The old tree is deleted in the background; waiting lets the harness kill the process there too.
            result.Cleanup.GetAwaiter().GetResult();
            Console.WriteLine($"{result.Status} {result.ToVersion}");
            return result.Status == ApplyStatus.Applied ? 0 : 5;
        case ["update", var install, var store, var trustFile, var strategy]:
            // One download at a time, so that two runs reach the same crash points in the same order.
            var update = Patcher.UpdateAsync(install, new DirectorySource(store), new UpdateOptions
            {
                Apply = new PatcherOptions { TrustedKeys = [File.ReadAllText(trustFile)], Strategy = Enum.Parse<CommitStrategy>(strategy, ignoreCase: true) },
                MaxParallelDownloads = 1,
            }).GetAwaiter().GetResult();
            update.Apply?.Cleanup.GetAwaiter().GetResult();
            Console.WriteLine($"{update.Status} {update.ToVersion}");
            return update.Status == UpdateStatus.Updated ? 0 : 5;
        case ["recover", var install]:
            var recovered = Patcher.Recover(install);
            recovered.Cleanup.GetAwaiter().GetResult();
            Console.WriteLine(recovered.Outcome);
            return 0;
        default:
            Console.Error.WriteLine("usage: apply INSTALL PATCH TRUST.pub auto|swap|layered|swap-link | update INSTALL STORE TRUST.pub auto|swap|layered | recover INSTALL");
            return 2;
    }
}
catch (PatcherException ex)
{
    Console.Error.WriteLine($"{ex.Code}: {ex.Message}");
    return 3;
}
