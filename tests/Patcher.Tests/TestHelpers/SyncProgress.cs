namespace Patching.Tests.TestHelpers;

/// <summary>
/// Progress reported on the caller's thread, at the moment the engine reports it (unlike <see cref="Progress{T}"/>,
/// which posts): lets a test act at an exact phase of an apply.
/// </summary>
internal sealed class SyncProgress(Action<PatchProgress> onReport) : IProgress<PatchProgress>
{
    public void Report(PatchProgress value) => onReport(value);
}
