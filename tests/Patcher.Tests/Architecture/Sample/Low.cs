namespace Patching.Tests.Architecture.Sample.Low;

/// <summary>
/// The lower half of the sample. Its only use of <see cref="High"/> is a call inside a lambda, which the compiler moves
/// into a nested closure class: the reader must still see it and count it for <see cref="Store"/>.
/// </summary>
internal sealed class Store
{
    public Func<int> Later() => () => High.Api.Answer();
}

/// <summary>
/// Methods of known length for <see cref="SourceSizeTests"/>: one with a lambda inside its body (8 lines from brace to
/// brace), one async (4 lines). Keep their line counts in step with the test when editing.
/// </summary>
internal static class Measured
{
    public static int Sum(int[] values)
    {
        var total = 0;
        Array.ForEach(values, v =>
        {
            total += v;
        });
        return total;
    }

    public static async Task<int> CountAsync(IEnumerable<int> values)
    {
        await Task.Yield();
        return values.Count();
    }
}
