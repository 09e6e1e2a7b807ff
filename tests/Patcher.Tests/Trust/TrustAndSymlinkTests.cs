using Patching.Building;
using Patching.Tests.TestHelpers;

namespace Patching.Tests.Trust;

public sealed class TrustAndSymlinkTests
{
    [Test]
    public void Apply_SignedBySecondTrustedKey_AppliesForKeyRotation()
    {
        using var s = new PatchScenario("rotation").WithSmallGame().Install();
        var newKey = Patching.Signing.SigningKeys.Generate();
        PatchBuilder.Build(new BuildRequest
        {
            FromDir = s.OldTree, ToDir = s.NewTree, OutDir = s.PatchDir, Product = "demo-game",
            Version = "2.0.0", FromVersion = "1.0.0", PrivateKeyPem = newKey.PrivatePem,
        });

        var result = Patcher.Apply(s.InstallDir, s.PatchDir, new PatcherOptions { TrustedKeys = [s.PublicKey, newKey.PublicPem] });

        Assert.That(result.Status, Is.EqualTo(ApplyStatus.Applied));
        Assert.That(PatchScenario.Listing(s.InstallDir), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_SignedByRetiredKeyOnly_RefusedAndNothingChanged()
    {
        using var s = new PatchScenario("retired").WithSmallGame().Install();
        s.BuildPatch();
        var replacement = Patching.Signing.SigningKeys.Generate();
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, new PatcherOptions { TrustedKeys = [replacement.PublicPem] }));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureInvalid));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_ThresholdTwo_OneSignatureRefusedTwoSignaturesApply()
    {
        using var s = new PatchScenario("threshold").WithSmallGame().Install();
        s.BuildPatch();
        var second = Patching.Signing.SigningKeys.Generate();
        var options = new PatcherOptions { TrustedKeys = [s.PublicKey, second.PublicPem], SignatureThreshold = 2 };
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, options));
        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureThresholdNotMet));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));

        PatchBuilder.Sign(s.PatchDir, second.PrivatePem);
        Assert.That(Patcher.Apply(s.InstallDir, s.PatchDir, options).Status, Is.EqualTo(ApplyStatus.Applied));
    }

    [TestCase("brainpoolP256r1")]
    [TestCase("explicit-nistP256")]
    public void Apply_TrustedKeyNotOnTheNamedP256Curve_RefusedAsKeyInvalid(string curve)
    {
        using var s = new PatchScenario("other-curve").WithSmallGame().Install();
        s.BuildPatch();
        using var other = System.Security.Cryptography.ECDsa.Create();
        if (curve == "explicit-nistP256")
        {
            // The right curve, spelled out as parameters instead of named: refused (the key names its curve).
            using var named = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
            other.ImportParameters(named.ExportExplicitParameters(includePrivateParameters: false));
        }
        else
        {
            other.GenerateKey(System.Security.Cryptography.ECCurve.CreateFromFriendlyName(curve));
        }

        var options = new PatcherOptions { TrustedKeys = [other.ExportSubjectPublicKeyInfoPem()] };

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.KeyInvalid));
        Assert.That(ex.Message, Does.Contain("P-256"));
    }

    [Test]
    public void Apply_NoTrustedKeysConfigured_Refused()
    {
        using var s = new PatchScenario("nokeys").WithSmallGame().Install();
        s.BuildPatch();

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, new PatcherOptions()));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SignatureMissing));
    }

    [Test]
    public void Apply_BaseDirectoryIsSymlinkLeavingInstall_RefusedAndOutsideUntouched()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("creating symlinks needs privileges on Windows");
        using var s = new PatchScenario("symlink-base").WithSmallGame().Install();
        s.BuildPatch();
        // The attacker (or a confused tool) replaced data/ with a link to a look-alike directory outside the install.
        var outside = s.Dir("outside");
        PatchScenario.CopyTree(Path.Join(s.InstallDir, "data"), outside);
        Directory.Delete(Path.Join(s.InstallDir, "data"), recursive: true);
        Directory.CreateSymbolicLink(Path.Join(s.InstallDir, "data"), outside);
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.BaseMismatch), "files reached through a symlink are not part of the install");
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Apply_FullPackageOverSymlinkedDirectory_WritesRealDirectoryAndNeverThroughLink()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("creating symlinks needs privileges on Windows");
        using var s = new PatchScenario("symlink-full").WithSmallGame();
        var full = Path.Join(s.Root, "full");
        s.BuildFull(s.NewTree, full, "2.0.0");
        Directory.CreateDirectory(s.InstallDir);
        var outside = s.Dir("outside");
        PatchScenario.Write(outside, "victim.txt", "must not change");
        Directory.CreateSymbolicLink(Path.Join(s.InstallDir, "data"), outside);
        Directory.CreateSymbolicLink(Path.Join(s.InstallDir, "my-link"), outside);
        var outsideBefore = PatchScenario.Listing(outside);

        Patcher.Apply(s.InstallDir, full, s.Options);

        Assert.That(PatchScenario.Listing(outside), Is.EqualTo(outsideBefore));
        Assert.That(new DirectoryInfo(Path.Join(s.InstallDir, "data")).LinkTarget, Is.Null, "data is now a real directory");
        var preserved = Directory.GetDirectories(Path.Join(s.ParentDir, ".game.patcher"), "preserved-*").Single();
        Assert.That(new DirectoryInfo(Path.Join(preserved, "data")).LinkTarget, Is.EqualTo(outside), "the displaced link is kept aside, not deleted");
        Assert.That(new DirectoryInfo(Path.Join(s.InstallDir, "my-link")).LinkTarget, Is.EqualTo(outside), "the user's own link is carried over as a link");
        Assert.That(PatchScenario.Listing(s.InstallDir, rel => rel == "my-link" || rel.StartsWith("my-link/", StringComparison.Ordinal)), Is.EqualTo(PatchScenario.Listing(s.NewTree)));
    }

    [Test]
    public void Apply_InstallPathIsSymlink_Refused()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("creating symlinks needs privileges on Windows");
        using var s = new PatchScenario("symlink-root").WithSmallGame();
        s.BuildPatch();
        var real = s.Dir("real-game");
        PatchScenario.CopyTree(s.OldTree, real);
        Directory.CreateSymbolicLink(s.InstallDir, real);
        var before = PatchScenario.Listing(s.Root);

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, s.Options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.SymlinkEscape));
        Assert.That(PatchScenario.Listing(s.Root), Is.EqualTo(before));
    }

    [Test]
    public void Open_ManifestOverSizeLimit_RefusedBeforeParsing()
    {
        using var s = new PatchScenario("too-large").WithSmallGame().Install();
        s.BuildPatch();
        var options = s.Options with { Limits = new ManifestLimits { MaxManifestBytes = 256 } };

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.ManifestTooLarge));
    }

    [Test]
    public void Apply_MoreEntriesThanLimit_RefusedWithLimitExceeded()
    {
        using var s = new PatchScenario("too-many").WithSmallGame(extraFiles: 5).Install();
        s.BuildPatch();
        var options = s.Options with { Limits = new ManifestLimits { MaxFiles = 10 } };

        var ex = Assert.Throws<PatcherException>(() => Patcher.Apply(s.InstallDir, s.PatchDir, options));

        Assert.That(ex!.Code, Is.EqualTo(PatchErrorCode.LimitExceeded));
    }
}
