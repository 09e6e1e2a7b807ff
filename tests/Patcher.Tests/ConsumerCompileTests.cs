using Patching;

namespace Patching.Tests;

/// <summary>
/// A consumer writes <c>using Patching;</c> and then <c>Patcher.Apply(...)</c>: the namespace must not
/// shadow the class. This file is that consumer; if the name lookup broke, the project would not compile.
/// </summary>
public sealed class ConsumerCompileTests
{
    [Test]
    public void PatcherApply_AfterUsing_ResolvesToFacadeClass()
    {
        Func<string, string, PatcherOptions, ApplyResult> apply = Patcher.Apply;
        Assert.That(apply.Method.DeclaringType, Is.EqualTo(typeof(Patcher)));
    }
}
