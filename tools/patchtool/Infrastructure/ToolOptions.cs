using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text;
using Patching.Signing;

namespace PatchTool.Infrastructure;

/// <summary>Options shared by every command (declared once on the root, recursive).</summary>
internal sealed class GlobalOptions
{
    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Log each step (Information level) and print details of unexpected errors",
        Recursive = true,
    };
}

/// <summary>Factories for options several commands share, so their names and help read the same everywhere.</summary>
internal static class ToolOptions
{
    public static Option<string> Patch() => new("--patch")
    {
        Description = "Patch directory (manifest.json, manifest.sig, blobs/)",
        HelpName = "PATCHDIR",
        Required = true,
    };

    /// <summary><c>--target</c>, also spelled <c>--install-dir</c> as the library's <c>installDir</c> parameter.</summary>
    public static Option<string> Target(string description) => new("--target", "--install-dir")
    {
        Description = description,
        HelpName = "DIR",
        Required = true,
    };

    public static Option<string[]> Trust(bool required) => new("--trust")
    {
        Description = "Trusted public key file (signing.pub); repeat for several keys",
        HelpName = "PUB",
        Required = required,
        Arity = required ? ArgumentArity.OneOrMore : ArgumentArity.ZeroOrMore,
    };

    public static Option<int> Threshold() => new("--threshold")
    {
        Description = "How many distinct trusted keys must have signed",
        HelpName = "N",
        DefaultValueFactory = _ => 1,
    };

    public static Option<bool> Json() => new("--json")
    {
        Description = "Print one JSON document on stdout (also on failure: {\"ok\": false, \"error\": ...})",
    };

    /// <summary><c>--state-dir</c>, also spelled <c>--state-directory</c> as <c>PatcherOptions.StateDirectory</c>.</summary>
    public static Option<string?> StateDir() => new("--state-dir", "--state-directory")
    {
        Description = "Where the journal, lock, staging and backups live (default: <parent>/.<name>.patcher)",
        HelpName = "DIR",
    };

    /// <summary>
    /// The parser of every single-valued string option (<see cref="PatchToolProgram.CreateRoot"/> sets it): the
    /// token as typed, which is what System.CommandLine's own conversion returns too. That conversion looks the
    /// type up in a table of converters for some twenty types (numbers, dates, <c>FileInfo</c>, ...) that it builds
    /// on first use, a cost each <c>recover</c> at the start of an app would pay (docs/decisions.md, "patchtool
    /// starts fast"). Arity and required options are checked before any parser runs.
    /// </summary>
    public static string? AsTyped(ArgumentResult result) => result.Tokens.Count == 0 ? null : result.Tokens[^1].Value;

    /// <summary>The parser of every repeatable string option: each token as typed (see <see cref="AsTyped"/>).</summary>
    public static string[] AsTypedList(ArgumentResult result) => [.. result.Tokens.Select(t => t.Value)];

    /// <summary>
    /// Whether <paramref name="flag"/> is set: the one way patchtool reads a flag. Read as an object because the
    /// precompiled System.CommandLine holds its generic getters for reference types only (and patchtool's image
    /// cannot hold another assembly's generic code): <c>GetValue&lt;bool&gt;</c> would have the JIT compile four
    /// methods in every run that reads a flag.
    /// </summary>
    public static bool Flag(ParseResult parse, Option<bool> flag) => parse.GetResult(flag)?.GetValueOrDefault<object>() is true;

    /// <summary>
    /// Reads each key file as the library takes a key: its text, or for a binary file (a DER key) its bytes as base64,
    /// so that a private key in either form is recognised and refused (<see cref="Patching.PatchErrorCode.KeyInvalid"/>). A missing
    /// file is a usage error.
    /// </summary>
    public static IReadOnlyList<string> ReadKeyFiles(IEnumerable<string>? paths, string option)
    {
        var pems = new List<string>();
        foreach (var path in paths ?? [])
        {
            if (!File.Exists(path)) throw new UsageException($"{option} '{path}': no such file");
            var bytes = File.ReadAllBytes(path);
            var text = IsText(bytes) ? Encoding.UTF8.GetString(bytes) : Convert.ToBase64String(bytes);
            // Read here as well as in the library, so that a refusal (a private key, above all) names the file.
            TrustedKey.FromPem(text, path).Dispose();
            pems.Add(text);
        }

        return pems;
    }

    private static bool IsText(byte[] bytes)
    {
        if (bytes.AsSpan().Contains((byte)0)) return false;
        try
        {
            _ = StrictUtf8.GetCharCount(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void CheckThreshold(int threshold, int keyCount)
    {
        if (threshold < 1) throw new UsageException("--threshold must be at least 1");
        if (threshold > keyCount)
            throw new UsageException($"--threshold {threshold} can never be met with {keyCount} trusted key(s); pass more --trust files");
    }

    public static string RequireDirectory(string path, string option)
    {
        var full = Path.GetFullPath(path);
        if (!Directory.Exists(full)) throw new UsageException($"{option} '{path}': no such directory");
        return full;
    }

    public static string Bytes(long n) => n switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{n} B"),
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{n / 1024.0:0.0} KiB"),
        < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{n / (1024.0 * 1024):0.0} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{n / (1024.0 * 1024 * 1024):0.00} GiB"),
    };

    public static string ShortId(string keyId) => keyId.Length > 16 ? keyId[..16] : keyId;
}

/// <summary>One patchtool command: its options, their validation, and its runner.</summary>
internal interface IToolCommand
{
    Command Create(ToolContext ctx, GlobalOptions global);
}
