using System.Globalization;
using System.Text;
using Patching.Manifests;
using Patching.Signing;
using Patching.Sources;
using Patching.State;
using Patching.Store;

namespace Patching.Update;

/// <summary>A channel pointer that passed every check, with the install it was checked against.</summary>
internal sealed record ChannelState(ChannelPointer Pointer, InstallStatus Status, StateLayout Layout)
{
    /// <summary>Whether the pointer names a version newer than the installed one (or nothing is installed).</summary>
    public bool IsNewer =>
        Status.InstalledVersion is null || PatchVersion.Parse(Pointer.Version, "version") > PatchVersion.Parse(Status.InstalledVersion, "installed version");
}

/// <summary>
/// Reads the signed channel pointer and refuses one that must not be followed: unsigned, for another channel or product,
/// expired, or older than one already seen (a replay). The highest sequence accepted is kept in the download folder.
/// </summary>
internal static class ChannelReader
{
    /// <summary>Reads and checks the channel pointer: signature, channel, product, expiry, and against replay.</summary>
    public static async Task<ChannelState> ReadAsync(UpdateRun run, CancellationToken ct)
    {
        var (installDir, source, options) = (run.InstallDir, run.Source, run.Options);
        var apply = options.Apply;
        if (apply.TrustedKeys.Count == 0)
            throw new PatcherException(PatchErrorCode.SignatureMissing, "no trusted keys are configured; refusing to follow an unverifiable channel", installDir);
        var status = InstallQueries.Status(installDir, apply);
        var layout = DownloadFolder.Layout(installDir, apply);
        var name = SourceNames.Channel(options.Channel);
        var bytes = await source.ReadAllAsync(name, ChannelPointer.MaxBytes, ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SourceObjectMissing, $"the store has no channel '{options.Channel}' ({name})", name);
        var sigName = SourceNames.ChannelSignature(options.Channel);
        var sig = await source.ReadAllAsync(sigName, (int)Math.Min(int.MaxValue, apply.Limits.MaxSignatureBytes), ct).ConfigureAwait(false)
            ?? throw new PatcherException(PatchErrorCode.SignatureMissing, $"the channel pointer {name} has no signature ({sigName})", sigName);
        using (var policy = TrustPolicy.FromPems(apply.TrustedKeys, apply.SignatureThreshold))
            policy.Verify(bytes, ManifestCodec.DeserializeEnvelope(sig, sigName), name);

        var pointer = ChannelPointer.Parse(bytes, name);
        var channel = new ChannelState(pointer, status, layout);
        Check(channel, options, name);
        return channel;
    }

    /// <summary>The checks of a verified pointer against the options and the install.</summary>
    private static void Check(ChannelState channel, UpdateOptions options, string name)
    {
        var (pointer, status, layout) = (channel.Pointer, channel.Status, channel.Layout);
        var apply = options.Apply;
        if (pointer.Channel != options.Channel)
            throw new PatcherException(PatchErrorCode.ReleaseMismatch, $"{name} is signed for channel '{pointer.Channel}', not '{options.Channel}'", name);
        if (status.Product is not null && pointer.Product != status.Product)
            throw new PatcherException(PatchErrorCode.WrongProduct, $"channel '{options.Channel}' is for product '{pointer.Product}' but '{status.Product}' is installed", name);
        _ = PatchVersion.Parse(pointer.Version, "channel version");
        var now = apply.TimeProvider.GetUtcNow();
        if (pointer.Expires <= now)
            throw new PatcherException(PatchErrorCode.ChannelExpired, $"the pointer of channel '{options.Channel}' expired at {pointer.Expires:u} (a stale or replayed pointer)", name);
        var seen = SeenSequence(DownloadFolder.PathOf(layout), pointer.Channel);
        if (pointer.Sequence < seen)
            throw new PatcherException(PatchErrorCode.ChannelRollback, $"the pointer of channel '{options.Channel}' has sequence {pointer.Sequence}, older than {seen} already seen (a replayed pointer)", name);
        if (status.InstalledVersion is not null && !apply.AllowDowngrade &&
            PatchVersion.Parse(pointer.Version, "channel version") < PatchVersion.Parse(status.InstalledVersion, "installed version"))
            throw new PatcherException(PatchErrorCode.ChannelRollback, $"channel '{options.Channel}' points at {pointer.Version}, older than the installed {status.InstalledVersion} (a replayed pointer)", name);
    }

    /// <summary>Remembers the highest pointer sequence accepted, so that an older pointer served later is refused.</summary>
    public static void RememberSequence(string downloads, ChannelPointer pointer)
    {
        if (SeenSequence(downloads, pointer.Channel) >= pointer.Sequence) return;
        DownloadFolder.WriteReplacing(SequencePath(downloads, pointer.Channel), Encoding.ASCII.GetBytes(pointer.Sequence.ToString(CultureInfo.InvariantCulture)));
    }

    private static string SequencePath(string downloads, string channel) => Path.Join(downloads, "channel-" + channel + ".seq");

    private static long SeenSequence(string downloads, string channel)
    {
        var path = SequencePath(downloads, channel);
        return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture, out var seq) ? seq : 0;
    }
}
