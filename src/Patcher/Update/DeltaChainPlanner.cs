using Patching.Manifests;
using Patching.Store;

namespace Patching.Update;

/// <summary>One step of a chain of deltas: the stored delta and the version it leads to.</summary>
internal sealed record DeltaChainStep(string To, StoredDelta Delta);

/// <summary>
/// Chooses the route of an update: the store's format 2 deltas, one or a chain of them, when together they cost fewer
/// bytes than the pieces the install lacks (never more than the full version), else the pieces.
/// </summary>
internal static class DeltaChainPlanner
{
    /// <summary>Indexes of intermediate versions read at most while looking for a chain of deltas.</summary>
    private const int MaxChainIndexes = 16;

    /// <summary>Prefix of the folder, inside the version's patch directory, that holds the delta from a version.</summary>
    public const string DeltaDirPrefix = "delta-";

    /// <summary>Where the delta of <paramref name="step"/> is fetched to, inside the version's patch directory.</summary>
    public static string DeltaDir(string patchDir, DeltaChainStep step) => Path.Join(patchDir, DeltaDirPrefix + step.Delta.From);

    /// <summary>
    /// The chain of deltas to take from the installed version to the channel's, or null when there is none or it would
    /// download no fewer bytes than the pieces (<paramref name="piecesBytes"/>); what an earlier run fetched is not counted.
    /// </summary>
    public static async Task<IReadOnlyList<DeltaChainStep>?> ChooseAsync(ReleaseReader reader, ChainSearch search, string patchDir, long piecesBytes, CancellationToken ct)
    {
        if (await FindCheapestAsync(reader, search, ct).ConfigureAwait(false) is not { } chain) return null;
        var chainCost = chain.Sum(step => step.Delta.Bytes - DownloadFolder.BytesPresent(DeltaDir(patchDir, step)));
        return chainCost < piecesBytes ? chain : null;
    }

    /// <summary>
    /// The cheapest chain of stored deltas from the installed version to the channel's version, in bytes, or null when
    /// there is none. The deltas to a version are listed in its index; the search walks back from the latest version,
    /// newest first (so a version's cost to the latest is final when its own deltas are read), reading the signed index
    /// of each version some delta starts from, down to the installed one, at most <see cref="MaxChainIndexes"/> of them.
    /// </summary>
    private static async Task<IReadOnlyList<DeltaChainStep>?> FindCheapestAsync(ReleaseReader reader, ChainSearch search, CancellationToken ct)
    {
        var (pointer, installed) = (search.Pointer, search.Installed);
        var floor = PatchVersion.Parse(installed, "installed version");
        var best = new Dictionary<string, (long Cost, string? Next, StoredDelta? Step)>(StringComparer.Ordinal) { [pointer.Version] = (0, null, null) };
        var pending = new List<string> { pointer.Version };
        var reads = 0;
        while (pending.Count > 0)
        {
            var version = pending.MaxBy(v => PatchVersion.Parse(v, "version"))!;
            pending.Remove(version);
            IReadOnlyList<StoredDelta> deltas;
            if (version == pointer.Version) deltas = search.LatestDeltas;
            else if (++reads > MaxChainIndexes) break;
            else deltas = (await reader.ReadIndexAsync(pointer.Product, version, ct).ConfigureAwait(false))?.Deltas ?? [];

            foreach (var delta in deltas)
            {
                if (!PatchVersion.TryParse(delta.From, out var from) || from < floor || from >= PatchVersion.Parse(version, "version")) continue;
                var cost = best[version].Cost + delta.Bytes;
                if (best.TryGetValue(delta.From, out var known) && known.Cost <= cost) continue;
                best[delta.From] = (cost, version, delta);
                if (delta.From != installed && !pending.Contains(delta.From)) pending.Add(delta.From);
            }
        }

        if (!best.ContainsKey(installed)) return null;
        var chain = new List<DeltaChainStep>();
        for (var at = installed; at != pointer.Version; at = best[at].Next!)
            chain.Add(new DeltaChainStep(best[at].Next!, best[at].Step!));
        return chain;
    }
}

/// <summary>What a chain of deltas is looked for between: the channel's pointer, the deltas its version's index lists, and the installed version.</summary>
internal sealed record ChainSearch(ChannelPointer Pointer, IReadOnlyList<StoredDelta> LatestDeltas, string Installed);
