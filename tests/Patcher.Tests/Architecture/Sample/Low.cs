namespace Patching.Tests.Architecture.Sample.Low;

/// <summary>
/// The lower half of the sample. Its only use of <see cref="High"/> is a call inside a lambda, which the compiler moves
/// into a nested closure class: the reader must still see it and count it for <see cref="Store"/>.
/// </summary>
internal sealed class Store
{
    public Func<int> Later() => () => High.Api.Answer();
}
