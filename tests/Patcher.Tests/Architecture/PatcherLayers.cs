namespace Patching.Tests.Architecture;

/// <summary>
/// The direction of dependencies inside the Patcher library, declared once. docs/architecture.md shows the same table.
/// </summary>
/// <remarks>
/// Reading the table: level 0 is the top; a component may use any component of a larger level and a sibling of its own
/// level (siblings may not form a cycle); nothing may use a component above it. The "apply" side (what runs inside a
/// launcher's update) and the "publish" side (what builds and stores releases) never use each other; both stand on the
/// shared rows below them.
///
/// Why this order:
/// <list type="bullet">
/// <item>The front door is the class <c>Patching.Patcher</c> alone: the rest of the root namespace is the public
/// contract (exceptions, error codes, options, results, progress records, log event ids, the source interface) that
/// every layer may throw, take or return, so it sits at the very bottom and uses nothing of the library. Nothing calls
/// back into <c>Patcher</c>: an inner layer that needs what a public method does calls the layer that does it.</item>
/// <item><c>Update</c> (check, update and repair from a release store) drives the same apply pipeline as a patch
/// directory does, so it sits above the pipeline; it reads the store's signed channel pointer and chunks the installed
/// files to find reusable pieces, so it may also use <c>Store</c> and <c>Building</c>.</item>
/// <item>The pipeline (<c>Transaction</c>, or <c>Pipeline</c> once named so) runs one apply in order: preflight,
/// lock, journal, stage, commit, finish. Recovery is reached from the pipeline (an apply first finishes what a crash
/// left) and dispatches to the commit strategy named in the journal, so it is above <c>Commit</c>.</item>
/// <item>A commit strategy stages, commits, finishes, rolls back and recovers its own kind of transaction; it calls
/// <c>Staging</c> to receive content and build the staged tree, never the other way round.</item>
/// <item>The shared row holds what every upper layer reads and nothing of the transaction's flow: the journal, the
/// state directory's layout and lock (<c>State</c>), patch packages and their sources, manifests, signatures and
/// deltas. They may use each other one way (a package holds a manifest and its signature; a delta reads a manifest's
/// recipes) but never in a circle.</item>
/// <item><c>Progress</c> turns counts into public progress records; it needs only the contract, so everything above
/// may report progress.</item>
/// <item><c>IO</c> (with <c>IO.Interop</c>, its P/Invoke declarations) is the file-operations seam and the platform
/// code: it knows files, handles and error numbers and nothing of patches, journals or commits, so every layer can
/// stand on it and it can be tested alone.</item>
/// <item>The public source classes <c>Patching.DirectorySource</c> and <c>Patching.HttpSource</c> live in the root
/// namespace so a launcher needs one <c>using</c>, but they are implementations that use the store's object names: they
/// belong to <c>Sources</c>, not to the contract.</item>
/// </list>
/// </remarks>
internal static class PatcherLayers
{
    public static readonly IReadOnlyList<Component> Table =
    [
        //  level  side       component     members: types, namespaces, or namespaces with all below them (.*)
        new(0,     "",        "Patcher",    "Patching.Patcher"),
        new(1,     "",        "Update",     "Patching.Update.*"),
        new(2,     "apply",   "Pipeline",   "Patching.Transaction.*", "Patching.Pipeline.*"),
        new(3,     "apply",   "Recovery",   "Patching.Recovery.*"),
        new(4,     "apply",   "Commit",     "Patching.Commit.*"),
        new(5,     "apply",   "Staging",    "Patching.Staging.*"),
        new(2,     "publish", "Store",      "Patching.Store.*"),
        new(3,     "publish", "Building",   "Patching.Building.*"),
        new(6,     "",        "Journal",    "Patching.Journal.*"),
        new(6,     "",        "State",      "Patching.State.*"),
        new(6,     "",        "Sources",    "Patching.Sources.*", "Patching.DirectorySource", "Patching.HttpSource"),
        new(6,     "",        "Manifests",  "Patching.Manifests.*"),
        new(6,     "",        "Signing",    "Patching.Signing.*"),
        new(6,     "",        "Deltas",     "Patching.Deltas.*"),
        new(7,     "",        "Progress",   "Patching.Progress.*"),
        new(8,     "",        "IO",         "Patching.IO.*"),
        new(9,     "",        "contract",   "Patching"),
    ];
}
