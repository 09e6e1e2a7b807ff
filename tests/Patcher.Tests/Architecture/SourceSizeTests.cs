using Patching.Tests.TestHelpers;

namespace Patching.Tests.Architecture;

/// <summary>
/// Files and methods of the library stay small enough to read whole: a file under src/ of at most about 400 lines, a
/// method of at most about 60. Past that a reader can no longer hold the unit in mind, and it usually does two jobs.
/// </summary>
public sealed class SourceSizeTests
{
    private const int MaxFileLines = 400;
    private const int MaxMethodLines = 60;

    /// <summary>
    /// Files allowed to be longer, each with its reason. Keep it short: a file belongs here only when splitting it would
    /// scatter one thing a reader must see at once.
    /// </summary>
    private static readonly Dictionary<string, string> LongFiles = new(StringComparer.Ordinal)
    {
    };

    /// <summary>Methods allowed to be longer ("Namespace.Type.Method"), each with its reason.</summary>
    private static readonly Dictionary<string, string> LongMethods = new(StringComparer.Ordinal)
    {
    };

    private const string Sample = "Patching.Tests.Architecture.Sample.";

    private static string SourceRoot => Path.Join(RepoPaths.Root, "src");

    [Test]
    public void Files_UnderSrc_AtMost400Lines()
    {
        var tooLong = Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(SourceRoot, f).Replace('\\', '/'))
            .Where(f => !MethodSpans.IsBuildOutput(f))
            .Select(f => (File: f, Lines: File.ReadLines(Path.Join(SourceRoot, f)).Count()))
            .Where(f => f.Lines > MaxFileLines && !LongFiles.ContainsKey(f.File))
            .Order()
            .Select(f => $"src/{f.File}: {f.Lines} lines")
            .ToList();

        Assert.That(tooLong, Is.Empty, $"files over {MaxFileLines} lines:\n" + string.Join("\n", tooLong));
    }

    [Test]
    public void Methods_OfPatcherAssembly_AtMost60Lines()
    {
        var spans = MethodSpans.Read(typeof(Patcher).Assembly.Location, SourceRoot);
        // Thousands of methods: none found means the debug symbols were not matched to the sources, not a clean result.
        Assert.That(spans, Has.Count.GreaterThan(1000), "methods measured in the Patcher assembly");
        var tooLong = spans
            .Where(m => m.Lines > MaxMethodLines && !LongMethods.ContainsKey(m.Name))
            .Select(m => $"src/{m.File}:{m.FirstLine} {m.Name}: {m.Lines} lines")
            .ToList();

        Assert.That(tooLong, Is.Empty, $"methods over {MaxMethodLines} lines:\n" + string.Join("\n", tooLong));
    }

    [Test]
    public void MethodSpans_CompiledSample_MeasuresBodiesWithLambdasAndStateMachines()
    {
        var spans = MethodSpans.Read(typeof(SourceSizeTests).Assembly.Location, Path.Join(RepoPaths.Root, "tests"))
            .Where(s => s.Name.StartsWith(Sample, StringComparison.Ordinal))
            .ToDictionary(s => s.Name, s => s.Lines);

        Assert.That(spans, Does.ContainKey(Sample + "Low.Measured.Sum").WithValue(8), "brace to brace, the lambda included");
        Assert.That(spans, Does.ContainKey(Sample + "Low.Measured.CountAsync").WithValue(4), "measured on its state machine");
        Assert.That(spans, Does.ContainKey(Sample + "Low.Store.Later").WithValue(1), "an expression body");
        Assert.That(spans.Keys, Has.None.Contains("<"), "lambdas and state machines are not reported on their own");
    }
}
