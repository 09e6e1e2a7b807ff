using System.CommandLine;
using Patching.Building;
using Patching.Manifests;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary>
/// <c>patchtool sign --patch PATCHDIR --key KEYFILE</c>: adds a signature over the exact manifest.json bytes,
/// keeping signatures by other keys (for threshold signing).
/// </summary>
internal sealed class SignCommand : IToolCommand
{
    private readonly Option<string> _patch = ToolOptions.Patch();
    private readonly Option<string> _key = new("--key") { Description = "Private key file (signing.key)", HelpName = "KEYFILE", Required = true };

    public Command Create(ToolContext ctx, GlobalOptions global)
    {
        var command = new Command("sign", "Add a signature to a patch (other keys' signatures are kept)") { _patch, _key };
        command.SetAction(pr => CommandRunner.Run(ctx, json: false, ToolOptions.Flag(pr, global.Verbose),
            () => Run(ctx, new Settings(pr.GetValue(_patch)!, pr.GetValue(_key)!))));
        return command;
    }

    internal sealed record Settings(string Patch, string Key);

    internal static int Run(ToolContext ctx, Settings s)
    {
        var patch = Path.GetFullPath(s.Patch);
        if (!File.Exists(s.Key)) throw new UsageException($"--key '{s.Key}': no such file");
        var entry = PatchBuilder.Sign(patch, File.ReadAllText(s.Key));
        var sigPath = Path.Join(patch, ManifestCodec.SignatureFileName);
        var count = ManifestCodec.DeserializeEnvelope(File.ReadAllBytes(sigPath), sigPath).Signatures.Count;
        ctx.Out.WriteLine($"signed {Path.Join(patch, ManifestCodec.ManifestFileName)}");
        ctx.Out.WriteLine($"  key id      {entry.KeyId}");
        ctx.Out.WriteLine($"  signatures  {count} in {sigPath}");
        return ExitCodes.Ok;
    }
}
