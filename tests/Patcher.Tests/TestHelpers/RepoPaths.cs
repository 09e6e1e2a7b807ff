namespace Patching.Tests.TestHelpers;

/// <summary>Paths into the checkout the tests were built from (found by walking up to Patcher.sln).</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "Patcher.sln"))) return dir.FullName;
        }

        throw new DirectoryNotFoundException("Patcher.sln not found above " + TestContext.CurrentContext.TestDirectory);
    });

    public static string Root => RootLazy.Value;
    public static string Fixtures => Path.Join(Root, "fixtures");
    public static string Sample => Path.Join(Fixtures, "sample");
    public static string Golden => Path.Join(Fixtures, "golden");
    public static string Keys => Path.Join(Fixtures, "keys");
    public static string Docs => Path.Join(Root, "docs");

    public static string TestKey => Path.Join(Keys, "test-signing.key");
    public static string TestPub => Path.Join(Keys, "test-signing.pub");
    public static string TestKey2 => Path.Join(Keys, "test-signing-2.key");
    public static string TestPub2 => Path.Join(Keys, "test-signing-2.pub");
    public static string TestEd25519Key => Path.Join(Keys, "test-ed25519.key");
    public static string TestEd25519Pub => Path.Join(Keys, "test-ed25519.pub");
    public static string TestEd25519Key2 => Path.Join(Keys, "test-ed25519-2.key");
    public static string TestEd25519Pub2 => Path.Join(Keys, "test-ed25519-2.pub");
}
