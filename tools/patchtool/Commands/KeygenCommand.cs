using System.CommandLine;
using Patching.Manifests;
using Patching.Signing;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool keygen --out DIR [--algorithm ed25519|p256] [--force]</c>: a new key pair as DIR/signing.key and
/// DIR/signing.pub, Ed25519 unless asked otherwise.
/// </summary>
internal sealed class KeygenCommand : IToolCommand
{
    private readonly Option<string> _out = new("--out")
    {
        Description = "Directory for signing.key (private, PKCS#8 PEM) and signing.pub (public, SPKI PEM)",
        HelpName = "DIR",
        Required = true,
    };

    private readonly Option<string> _algorithm = new("--algorithm")
    {
        Description = "ed25519 (default: deterministic signatures, verifies on every platform) or p256 (ECDSA P-256, for launchers pinned to it)",
        HelpName = "ALG",
    };

    private readonly Option<bool> _force = new("--force") { Description = "Replace an existing key pair (the old private key is lost)" };

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("keygen", "Generate a signing key pair") { _out, _algorithm, _force };
        command.SetAction(pr => CommandRunner.Run(ctx, json: false, ToolOptions.Flag(pr, global.Verbose),
            () => Run(ctx, new Settings(pr.GetValue(_out)!, ToolOptions.Flag(pr, _force), ParseAlgorithm(pr.GetValue(_algorithm))))));
        return command;
    }

    internal sealed record Settings(string OutDir, bool Force, SigningAlgorithm Algorithm = SigningAlgorithm.Ed25519);

    private static SigningAlgorithm ParseAlgorithm(string? name) => name?.ToLowerInvariant() switch
    {
        null or "ed25519" => SigningAlgorithm.Ed25519,
        "p256" or "p-256" or "ecdsa-p256" => SigningAlgorithm.EcdsaP256,
        _ => throw new UsageException($"--algorithm '{name}': expected ed25519 or p256"),
    };

    internal static int Run(ToolContext ctx, Settings s)
    {
        var dir = Path.GetFullPath(s.OutDir);
        RefuseShippedDirectory(dir);
        var keyPath = Path.Join(dir, SigningKeys.PrivateKeyFileName);
        var pubPath = Path.Join(dir, SigningKeys.PublicKeyFileName);
        if (!s.Force)
        {
            foreach (var existing in new[] { keyPath, pubPath }.Where(File.Exists))
                throw new UsageException($"'{existing}' already exists; refusing to overwrite a key (pass --force to replace the pair)");
        }

        Directory.CreateDirectory(dir);
        var (privatePem, publicPem) = SigningKeys.Generate(s.Algorithm);
        WritePrivateKey(keyPath, privatePem);
        File.WriteAllText(pubPath, publicPem);

        ctx.Out.WriteLine($"private key  {keyPath}  (keep it secret and offline; it signs patches)");
        ctx.Out.WriteLine($"public key   {pubPath}  (ship it with the launcher as a trusted key)");
        ctx.Out.WriteLine($"algorithm    {(s.Algorithm == SigningAlgorithm.Ed25519 ? "Ed25519" : "ECDSA P-256")}");
        ctx.Out.WriteLine($"key id       {KeyIdOf(publicPem)}");
        return ExitCodes.Ok;
    }

    /// <summary>Hex SHA-256 of the key's SubjectPublicKeyInfo: the id manifest.sig names it by.</summary>
    internal static string KeyIdOf(string publicPem)
    {
        using var key = TrustedKey.FromPem(publicPem, "public key");
        return key.KeyId;
    }

    /// <summary>
    /// Refuses a directory whose contents reach players: a game's install (one Patcher manages has a state directory
    /// beside it or inside it), a patch directory (manifest.json, manifest.sig, blobs/), or any folder within one.
    /// A private key written there would ship with the next release.
    /// </summary>
    private static void RefuseShippedDirectory(string dir)
    {
        for (var d = dir; d is not null; d = Path.GetDirectoryName(d))
        {
            var name = Path.GetFileName(d);
            var parent = Path.GetDirectoryName(d);
            string? why = null;
            if (name.Length > 0 && parent is not null && Directory.Exists(Path.Join(parent, "." + name + ".patcher")))
                why = $"a game install Patcher updates ('{Path.Join(parent, "." + name + ".patcher")}' is its state)";
            else if (Directory.Exists(Path.Join(d, PathRules.ReservedStateName)))
                why = $"a game install Patcher updates (it holds '{PathRules.ReservedStateName}')";
            else if (File.Exists(Path.Join(d, ManifestCodec.ManifestFileName)) || File.Exists(Path.Join(d, ManifestCodec.SignatureFileName))
                     || (d == dir && Directory.Exists(Path.Join(d, "blobs"))))
                why = "a patch directory (manifest.json, manifest.sig or blobs/)";
            if (why is null) continue;
            var what = d == dir ? $"'{dir}' is {why}" : $"'{dir}' is inside '{d}', {why}";
            throw new UsageException($"refusing to write a private key where players get it: {what}. Keep {SigningKeys.PrivateKeyFileName} outside every install and patch directory");
        }
    }

    private static void WritePrivateKey(string path, string pem)
    {
        // Replace rather than truncate, so the new file is created with owner-only permissions.
        File.Delete(path);
        using var stream = OperatingSystem.IsWindows()
            ? CreateOwnerOnlyOnWindows(path)
            : new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        using var writer = new StreamWriter(stream);
        writer.Write(pem);
    }

    /// <summary>
    /// Windows: the file is created with an ACL of its own, full control for the current user and nothing inherited, so
    /// a key written into a shared folder is not readable by whoever that folder lets read.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("windows")]
    private static FileStream CreateOwnerOnlyOnWindows(string path)
    {
        var security = new System.Security.AccessControl.FileSecurity();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        var user = System.Security.Principal.WindowsIdentity.GetCurrent().User!;
        security.SetOwner(user);
        security.AddAccessRule(new System.Security.AccessControl.FileSystemAccessRule(user, System.Security.AccessControl.FileSystemRights.FullControl,
            System.Security.AccessControl.AccessControlType.Allow));
        return new FileInfo(path).Create(FileMode.CreateNew, System.Security.AccessControl.FileSystemRights.Write | System.Security.AccessControl.FileSystemRights.ReadData,
            FileShare.None, 4096, FileOptions.None, security);
    }
}
