namespace Patching.Tests.Architecture;

/// <summary>One row of a layer table: a component of the code and where it sits.</summary>
/// <param name="Level">0 is the top. A component may use components of a larger level, and siblings of its own level
/// as long as no cycle forms; never a smaller level.</param>
/// <param name="Side">Components with different non-empty sides never use each other, whatever their levels (the
/// installing side and the publishing side share only what lies below both).</param>
/// <param name="Name">Short name used in reports.</param>
/// <param name="Members">Full names of single types or of namespaces; a name ending in <c>.*</c> is the namespace with
/// everything below it.</param>
internal sealed record Component(int Level, string Side, string Name, params string[] Members);

/// <summary>
/// Checks type references against a layer table: (a) no two components depend on each other, directly or through a
/// longer cycle; (b) no reference goes to a component above (smaller level) or to the other side; (c) every type
/// belongs to a row of the table. Reports one readable line per problem, naming the types involved.
/// </summary>
internal sealed class LayerRules(IReadOnlyList<Component> components)
{
    /// <summary>Types named in a report line per component edge, before "and N more".</summary>
    private const int ExamplesPerEdge = 6;

    /// <summary>
    /// The component a type belongs to: a row naming the type itself wins, then a row naming its namespace, then the row
    /// with the longest <c>.*</c> namespace that contains it. Null when no row covers it.
    /// </summary>
    public Component? ComponentOf(string fullTypeName)
    {
        var ns = fullTypeName[..Math.Max(0, fullTypeName.LastIndexOf('.'))];
        return components.FirstOrDefault(c => c.Members.Contains(fullTypeName, StringComparer.Ordinal))
            ?? components.FirstOrDefault(c => c.Members.Contains(ns, StringComparer.Ordinal))
            ?? components
                .SelectMany(c => c.Members.Where(m => m.EndsWith(".*", StringComparison.Ordinal)).Select(m => (Component: c, Namespace: m[..^2])))
                .Where(x => ns == x.Namespace || ns.StartsWith(x.Namespace + ".", StringComparison.Ordinal))
                .OrderByDescending(x => x.Namespace.Length)
                .Select(x => x.Component)
                .FirstOrDefault();
    }

    /// <summary>Every rule broken by <paramref name="references"/>, one line each, in a stable order; empty when all hold.</summary>
    public IReadOnlyList<string> Check(IEnumerable<TypeReference> references)
    {
        var problems = new List<string>();
        // component edge (from, to) -> the type references behind it
        var edges = new Dictionary<(string From, string To), SortedSet<string>>();
        var unplaced = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var r in references)
        {
            var from = ComponentOf(r.From);
            var to = ComponentOf(r.To);
            if (from is null) unplaced.Add(r.From);
            if (to is null) unplaced.Add(r.To);
            if (from is null || to is null || from == to) continue;
            var key = (from.Name, to.Name);
            if (!edges.TryGetValue(key, out var types)) edges[key] = types = new SortedSet<string>(StringComparer.Ordinal);
            types.Add($"{Short(r.From)} → {Short(r.To)}");
        }

        problems.AddRange(unplaced.Select(t => $"not in the layer table: {t}"));
        problems.AddRange(Cycles(edges));
        problems.AddRange(AgainstTheOrder(edges));
        return problems;
    }

    private IEnumerable<string> AgainstTheOrder(Dictionary<(string From, string To), SortedSet<string>> edges)
    {
        var byName = components.ToDictionary(c => c.Name);
        foreach (var ((from, to), types) in edges.OrderBy(e => e.Key))
        {
            var a = byName[from];
            var b = byName[to];
            if (b.Level < a.Level)
                yield return $"upward: {from} (level {a.Level}) → {to} (level {b.Level}): {Examples(types)}";
            else if (a.Side.Length > 0 && b.Side.Length > 0 && a.Side != b.Side)
                yield return $"across sides: {from} ({a.Side}) → {to} ({b.Side}): {Examples(types)}";
        }
    }

    /// <summary>
    /// Two-way pairs first (A ↔ B, with the types of both directions); then the longer cycles that remain without the
    /// pairs' edges, each once, with the shortest way back. Leaving the pairs out keeps the report to what must be
    /// fixed: a pair's edge would otherwise reappear in every longer cycle through it.
    /// </summary>
    private static IEnumerable<string> Cycles(Dictionary<(string From, string To), SortedSet<string>> edges)
    {
        var ordered = edges.Keys.OrderBy(k => k).ToList();
        foreach (var (from, to) in ordered)
        {
            if (string.CompareOrdinal(from, to) < 0 && edges.TryGetValue((to, from), out var back))
                yield return $"two-way: {from} ↔ {to}: {Examples(edges[(from, to)])}; back: {Examples(back)}";
        }

        var oneWay = edges.Where(e => !edges.ContainsKey((e.Key.To, e.Key.From))).ToDictionary();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (from, to) in oneWay.Keys.Order())
        {
            var path = ShortestPath(oneWay, to, from);
            if (path is null) continue;
            var cycle = new List<string> { from };
            cycle.AddRange(path);
            // the same cycle is found from each of its edges; report it once, starting at its smallest name
            var ring = cycle.Take(cycle.Count - 1).ToList();
            var start = ring.IndexOf(ring.Min(StringComparer.Ordinal)!);
            var canonical = ring.Skip(start).Concat(ring.Take(start)).ToList();
            canonical.Add(canonical[0]);
            var text = string.Join(" → ", canonical);
            if (!seen.Add(text)) continue;
            var steps = canonical.Zip(canonical.Skip(1)).Select(s => $"[{s.First} → {s.Second}: {Examples(edges[s])}]");
            yield return $"cycle: {text}: {string.Join(" ", steps)}";
        }
    }

    /// <summary>The components from <paramref name="start"/> to <paramref name="goal"/>, both included, or null.</summary>
    private static List<string>? ShortestPath(Dictionary<(string From, string To), SortedSet<string>> edges, string start, string goal)
    {
        var previous = new Dictionary<string, string> { [start] = start };
        var queue = new Queue<string>([start]);
        while (queue.Count > 0)
        {
            var at = queue.Dequeue();
            if (at == goal)
            {
                var path = new List<string> { goal };
                while (path[^1] != start) path.Add(previous[path[^1]]);
                path.Reverse();
                return path;
            }
            foreach (var next in edges.Keys.Where(k => k.From == at).Select(k => k.To).Order(StringComparer.Ordinal))
            {
                if (previous.TryAdd(next, at)) queue.Enqueue(next);
            }
        }
        return null;
    }

    private static string Examples(SortedSet<string> types) =>
        string.Join(", ", types.Take(ExamplesPerEdge)) + (types.Count > ExamplesPerEdge ? $" and {types.Count - ExamplesPerEdge} more" : "");

    private static string Short(string fullTypeName) => fullTypeName[(fullTypeName.LastIndexOf('.') + 1)..];
}
