// A minimal process for out-of-process crash tests: it runs one Patcher operation and exits 0, or prints
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
        case ["recover", var install]:
            var recovered = Patcher.Recover(install);
            recovered.Cleanup.GetAwaiter().GetResult();
            Console.WriteLine(recovered.Outcome);
            return 0;
        default:
            Console.Error.WriteLine("usage: apply INSTALL PATCH TRUST.pub auto|swap|layered|swap-link | recover INSTALL");
            return 2;
    }
}
catch (PatcherException ex)
{
    Console.Error.WriteLine($"{ex.Code}: {ex.Message}");
    return 3;
}
