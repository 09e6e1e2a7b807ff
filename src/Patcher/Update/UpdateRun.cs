using Patching.Sources;

namespace Patching.Update;

/// <summary>What one check, update or repair works with: the install, where the release store is read from, how, and who hears of progress.</summary>
internal sealed record UpdateRun(string InstallDir, IUpdateSource Source, UpdateOptions Options, IProgress<PatchProgress>? Progress);
