using Patching.Store;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Update;

/// <summary>
/// The "updating from a server" example in README.md is this code: it compiles here, runs against a store served on
/// loopback, and a test checks the README quotes it verbatim.
/// </summary>
[NonParallelizable]
public sealed class ReadmeUpdateExampleTests
{
    private static async Task<string> Launcher(string installDir, string storeUrl, IProgress<PatchProgress>? progress = null, CancellationToken ct = default)
    {
        // README-update:begin
        var options = new UpdateOptions { Apply = new PatcherOptions { TrustedKeys = [File.ReadAllText("signing.pub")] } };
        Patcher.Recover(installDir, options.Apply);   // at startup: finish or undo an interrupted update (cheap)
        using var source = new HttpSource(new Uri(storeUrl));
        try
        {
            var result = await Patcher.UpdateAsync(installDir, source, options, progress, ct);
            return result.Status switch
            {
                UpdateStatus.UpToDate => $"up to date ({result.ToVersion})",
                UpdateStatus.Busy => "another launcher is updating; try later",
                _ => $"updated {result.FromVersion} -> {result.ToVersion}, downloaded {result.BytesDownloaded} bytes",
            };
        }
        catch (PatcherException ex)   // the old version is intact; what was downloaded and verified is kept for the next try
        {
            return $"update failed: {ex.Code} {ex.Message}";
        }
        // README-update:end
    }

    [Test]
    public void Readme_UpdateExample_IsQuotedVerbatim()
    {
        var source = File.ReadAllLines(Path.Join(RepoPaths.Root, "tests", "Patcher.Tests", "Update", "ReadmeUpdateExampleTests.cs"));
        var begin = Array.FindIndex(source, l => l.Trim() == "// README-update:begin");
        var end = Array.FindIndex(source, l => l.Trim() == "// README-update:end");
        var indent = source[begin].Length - source[begin].TrimStart().Length;
        var snippet = string.Join('\n', source[(begin + 1)..end].Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));

        var readme = File.ReadAllText(Path.Join(RepoPaths.Root, "README.md")).ReplaceLineEndings("\n");

        Assert.That(readme, Does.Contain(snippet), "README.md must quote the update example from ReadmeUpdateExampleTests.cs");
    }

    [Test]
    public async Task Readme_UpdateExample_InstallsThenReportsUpToDate()
    {
        using var temp = TempDir.ForCurrentTest();
        TreeFactory.Write(temp["tree"], 7, files: 15);
        ReleaseStore.Publish(new PublishRequest
        {
            StoreDir = temp["store"], TreeDir = temp["tree"], Product = "readme-game", Version = "1.0.0",
            PrivateKeyPem = File.ReadAllText(RepoPaths.TestKey), Channel = "stable",
        });
        var install = temp.Dir("installs/game");
        await using var server = await StoreServer.StartAsync(temp["store"]);
        File.Copy(RepoPaths.TestPub, temp["signing.pub"]);
        var cwd = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = temp.Path;
            Assert.That(await Launcher(install, server.BaseUri.AbsoluteUri), Does.StartWith("updated  -> 1.0.0, downloaded "));
            Assert.That(await Launcher(install, server.BaseUri.AbsoluteUri), Is.EqualTo("up to date (1.0.0)"));
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
        }

        Assert.That(HashListing.Text(install), Is.EqualTo(HashListing.Text(temp["tree"])));
    }
}
