using Patching;
using PatchTool.Infrastructure;

namespace PatchTool.Commands;

/// <summary><c>patchtool verify-install --target DIR [--json]</c>: hashes the installed version's files (<see cref="Patcher.Verify"/>).</summary>
internal sealed class VerifyInstallCommand() : InstallCommand("verify-install", "Hash every file of the installed version; exit 4 if any is missing or modified", "The install directory", cancellable: true)
{
    protected override int Execute(ToolContext ctx, InstallSettings s, CancellationToken ct)
    {
        using var loggers = ToolLogging.Create(s.Verbose);
        var target = Path.GetFullPath(s.Target);
        var report = Patcher.Verify(target, EngineOptions.Create(loggers, s.StateDir), ct);
        var damage = new ErrorInfo((int)PatchErrorCode.VerifyFailed, nameof(PatchErrorCode.VerifyFailed),
            $"{report.Missing.Count} missing and {report.Modified.Count} modified file(s) in '{target}' (version {report.Version})", target);
        if (s.Json)
        {
            JsonOutput.Write(ctx.Out, new VerifyInstallDocument(report.IsIntact, target, report.Version, report.FilesChecked, report.Missing, report.Modified)
            { Error = report.IsIntact ? null : damage });
        }
        else
        {
            ctx.Out.WriteLine($"install      {target}");
            ctx.Out.WriteLine($"version      {report.Version}");
            ctx.Out.WriteLine($"checked      {report.FilesChecked} files: {report.Missing.Count} missing, {report.Modified.Count} modified");
            foreach (var p in report.Missing) ctx.Out.WriteLine($"  missing   {CommandRunner.OneLine(p)}");
            foreach (var p in report.Modified) ctx.Out.WriteLine($"  modified  {CommandRunner.OneLine(p)}");
        }

        if (report.IsIntact) return ExitCodes.Ok;
        ctx.Err.WriteLine(CommandRunner.ErrorLine(PatchErrorCode.VerifyFailed, damage.Message, null));
        return ExitCodes.For(PatchErrorCode.VerifyFailed);
    }
}
