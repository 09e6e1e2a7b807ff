using PatchTool.Infrastructure;

namespace Patching.Tests.TestHelpers;

/// <summary>The sample game (fixtures/sample) copied into a temp dir, and patches built from it through patchtool.</summary>
internal static class SamplePatch
{
    public const string Product = "sample-game";
    public const string FromVersion = "1.0.0";
    public const string ToVersion = "1.1.0";

    /// <summary>Copies sample v1 and v2 to <c>v1/</c> and <c>v2/</c> in <paramref name="temp"/> (layout.txt applied).</summary>
    public static (string V1, string V2) CopyTrees(TempDir temp)
    {
        SampleData.CopyVersion(RepoPaths.Sample, "v1", temp["v1"]);
        SampleData.CopyVersion(RepoPaths.Sample, "v2", temp["v2"]);
        return (temp["v1"], temp["v2"]);
    }

    /// <summary>Builds v1→v2 into <c>patch/</c> with <c>patchtool build</c> (format 1 unless <paramref name="extra"/> names one); signed with the test key unless <paramref name="key"/> is empty.</summary>
    public static string Build(TempDir temp, string? key = null, params string[] extra)
    {
        if (!Directory.Exists(temp["v1"])) CopyTrees(temp);
        key ??= RepoPaths.TestKey;
        string[] args =
        [
            "build", "--from", temp["v1"], "--to", temp["v2"], "--out", temp["patch"],
            "--product", Product, "--version", ToVersion, "--from-version", FromVersion,
            .. key.Length == 0 ? Array.Empty<string>() : ["--key", key],
            // The suites using this helper inspect format 1's manifest.json and blobs; format 2 has tests of its own.
            .. extra.Contains("--format") ? Array.Empty<string>() : ["--format", "1"],
            .. extra,
        ];
        CliRunner.Expect(0, args);
        return temp["patch"];
    }

    /// <summary>A copy of sample v1 with a user's save file, as a player's install would be.</summary>
    public static string Install(TempDir temp, string name = "install")
    {
        var dir = temp.Dir("installs");
        var install = Path.Join(dir, name);
        SampleData.CopyVersion(RepoPaths.Sample, "v1", install);
        TreeFactory.WriteFile(install, "saves/slot1.sav", "slot 1: level 2\n"u8.ToArray());
        return install;
    }
}
