using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Architecture;

/// <summary>A method's extent in its source file.</summary>
/// <param name="Name">The declaring type's full name, a dot, the method's name.</param>
/// <param name="File">The source file, as the compiler saw it.</param>
/// <param name="FirstLine">The method body's first line (usually its opening brace).</param>
/// <param name="Lines">Lines from the body's first to its last, both included.</param>
internal sealed record MethodSpan(string Name, string File, int FirstLine, int Lines);

/// <summary>
/// Reads how many source lines each method of an assembly spans, from the sequence points of its portable PDB: from the
/// first statement's line (the opening brace) to the last (the closing brace). Lambdas and local functions count for the
/// method that contains them; an async method or an iterator is measured on the state machine that holds its body.
/// </summary>
/// <remarks>
/// Constructors are left out: their sequence points include every field and property initializer of the class, spread
/// over the whole file, so their span says nothing about the constructor's own length. So are methods whose source is
/// not under the source root, or is under a bin/ or obj/ folder there (source-generated code).
/// </remarks>
internal static class MethodSpans
{
    public static IReadOnlyList<MethodSpan> Read(string assemblyPath, string sourceRoot)
    {
        var pdbPath = Path.ChangeExtension(assemblyPath, ".pdb");
        using var peStream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(peStream);
        using var pdbStream = File.OpenRead(pdbPath);
        using var pdbProvider = MetadataReaderProvider.FromPortablePdbStream(pdbStream);
        var md = pe.GetMetadataReader();
        var pdb = pdbProvider.GetMetadataReader();
        var root = Path.GetFullPath(sourceRoot) + Path.DirectorySeparatorChar;

        var spans = new Dictionary<string, MethodSpan>(StringComparer.Ordinal);
        foreach (var handle in md.MethodDefinitions)
        {
            var name = SourceName(md, handle);
            if (name is null) continue;
            var points = pdb.GetMethodDebugInformation(handle.ToDebugInformationHandle()).GetSequencePoints()
                .Where(p => !p.IsHidden)
                .ToList();
            if (points.Count == 0) continue;
            var file = OnDisk(pdb.GetString(pdb.GetDocument(points[0].Document).Name));
            if (!Path.GetFullPath(file).StartsWith(root, StringComparison.Ordinal) || IsBuildOutput(Path.GetRelativePath(root, file))) continue;
            var first = points.Min(p => p.StartLine);
            var span = new MethodSpan(name, Path.GetRelativePath(sourceRoot, file).Replace('\\', '/'), first, points.Max(p => p.EndLine) - first + 1);
            // Overloads share a name; report the longest of them.
            if (!spans.TryGetValue(name, out var known) || known.Lines < span.Lines) spans[name] = span;
        }

        return [.. spans.Values.OrderBy(s => s.File, StringComparer.Ordinal).ThenBy(s => s.FirstLine)];
    }

    /// <summary>True for a path under a bin/ or obj/ folder: build output, such as source generators' emitted files.</summary>
    /// <summary>
    /// The document's path in this checkout. A CI build (ContinuousIntegrationBuild) writes deterministic paths that
    /// start at <c>/_/</c>, the repository's root, instead of the path the sources had when compiled.
    /// </summary>
    private static string OnDisk(string document) =>
        document.StartsWith(DeterministicRoot, StringComparison.Ordinal) ? Path.Join(RepoPaths.Root, document[DeterministicRoot.Length..]) : document;

    private const string DeterministicRoot = "/_/";

    public static bool IsBuildOutput(string relativePath) =>
        relativePath.Split('/', '\\').Any(part => part is "bin" or "obj");

    /// <summary>
    /// "Namespace.Type.Method" for a method written in source; for a state machine's MoveNext, the async method or
    /// iterator it runs. Null for constructors and for what the compiler made up (lambdas, local functions, accessors
    /// of its own types), whose lines the containing method already spans.
    /// </summary>
    private static string? SourceName(MetadataReader md, MethodDefinitionHandle handle)
    {
        var method = md.GetMethodDefinition(handle);
        var name = md.GetString(method.Name);
        var type = md.GetTypeDefinition(method.GetDeclaringType());
        var typeName = md.GetString(type.Name);
        if (name == "MoveNext" && typeName.StartsWith('<') && typeName.Contains(">d__", StringComparison.Ordinal))
        {
            name = typeName[1..typeName.IndexOf('>', StringComparison.Ordinal)];
            type = md.GetTypeDefinition(type.GetDeclaringType());
            typeName = md.GetString(type.Name);
        }

        if (name is ".ctor" or ".cctor" || name.Contains('<', StringComparison.Ordinal) || typeName.Contains('<', StringComparison.Ordinal)) return null;
        var full = typeName;
        while (type.IsNested)
        {
            type = md.GetTypeDefinition(type.GetDeclaringType());
            full = md.GetString(type.Name) + "." + full;
        }

        var ns = md.GetString(type.Namespace);
        return (ns.Length > 0 ? ns + "." : "") + full + "." + name;
    }
}
