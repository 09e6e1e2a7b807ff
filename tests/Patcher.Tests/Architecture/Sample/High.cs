namespace Patching.Tests.Architecture.Sample.High;

/// <summary>The upper half of a two-namespace sample that <see cref="ArchitectureTests"/> compiles and reads back.</summary>
internal sealed class Api
{
    public Low.Store Store { get; } = new();

    public static int Answer() => 42;
}
