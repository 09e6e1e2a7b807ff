using Patching;

namespace PatcherSample;

/// <summary>What to tell a player for each <see cref="PatchErrorCode"/>.</summary>
public static class ErrorMessages
{
    // No discard arm: a code this switch does not name fails the build (CS8509, warnings are errors), so a new
    // error code can never reach a player as a bare number. CS8524 is about values outside the enum's names, which
    // the library never throws.
#pragma warning disable CS8524
    public static string For(PatcherException ex) => ex.Code switch
    {
        PatchErrorCode.Unknown => $"the update failed unexpectedly: {ex.Message}",

        // The patch was refused; nothing on disk changed.
        PatchErrorCode.PatchNotFound => "the update files are missing; download the update again",
        PatchErrorCode.ManifestMalformed or PatchErrorCode.ManifestTooLarge or PatchErrorCode.ManifestUnsupportedFormat
            or PatchErrorCode.UnsafePath or PatchErrorCode.LimitExceeded =>
            "the update is damaged or not meant for this launcher; download it again, or update the launcher",
        PatchErrorCode.SignatureMissing or PatchErrorCode.SignatureInvalid or PatchErrorCode.SignatureThresholdNotMet =>
            "the update is not signed by the publisher and was refused",
        PatchErrorCode.KeyInvalid => "the launcher's publisher key is unreadable; reinstall the launcher",
        PatchErrorCode.ManifestExpired => "this update has expired; check for a newer one",
        PatchErrorCode.BlobMissing or PatchErrorCode.BlobSizeMismatch or PatchErrorCode.BlobHashMismatch
            or PatchErrorCode.DeltaOutputMismatch or PatchErrorCode.DeltaOutputTooLong or PatchErrorCode.DeltaReferenceOutsideBase
            or PatchErrorCode.DeltaReferenceNotEarlier
            or PatchErrorCode.DeltaCorrupt or PatchErrorCode.DeltaWindowTooLarge or PatchErrorCode.PatchFileNotRegular =>
            "the update's download is incomplete or corrupt; download it again",
        PatchErrorCode.SourceUnavailable => "the update server cannot be reached right now; check the connection and try again (what was downloaded is kept)",
        PatchErrorCode.SourceObjectMissing or PatchErrorCode.ReleaseMismatch =>
            "the update server is missing part of this release; try again later",
        PatchErrorCode.DownloadCorrupt => "the download kept arriving damaged; try again later (what verified is kept)",
        PatchErrorCode.ChannelExpired or PatchErrorCode.ChannelRollback =>
            "the update server offered stale release information and it was refused; try again later",
        PatchErrorCode.ReleaseExists => "that version is already published with other content",
        PatchErrorCode.WrongProduct => "this update is for another game",
        PatchErrorCode.NotNewer => "this update is not newer than the installed version",
        PatchErrorCode.BaseManifestMissing => "this update needs the description of your installed version, which was not found; download the full game instead",
        PatchErrorCode.BaseManifestMismatch => "this update was made for a different build of your installed version; download the full game instead",
        PatchErrorCode.WrongBaseVersion => "this update is for another version of the game; get the update for your version",

        // The install or the machine; the old version is intact.
        PatchErrorCode.InstallNotFound => "the game folder does not exist; check the install location",
        PatchErrorCode.InstallNotADirectory => "the game location is a file, not a folder; check the install location",
        PatchErrorCode.BaseMismatch => $"game files were modified or are missing ({ex.Path}); repair the install or download the full game",
        PatchErrorCode.InsufficientSpace or PatchErrorCode.DiskFull => "not enough free disk space; free some space and try again",
        PatchErrorCode.SymlinkEscape => "the game folder contains a link that leads outside it; the update was refused",
        PatchErrorCode.Busy => "another launcher is updating this game; try again later",
        PatchErrorCode.FileLocked => $"close the program using {ex.Path} (is the game still running?) and try again",
        PatchErrorCode.AccessDenied => $"no permission to change {ex.Path}; run the launcher as the user who installed the game",
        PatchErrorCode.IOFailure => $"a disk error stopped the update ({ex.Message}); check the disk and try again",
        PatchErrorCode.JournalCorrupt => "the update history is damaged; repair the install or reinstall",
#pragma warning disable CS0618 // reserved and never thrown (cancellation is OperationCanceledException); named for exhaustiveness
        PatchErrorCode.Cancelled => "the update was cancelled; the old version is intact",
#pragma warning restore CS0618
        PatchErrorCode.NothingToRollBack => "no previous version is kept, so there is nothing to go back to",
        PatchErrorCode.VerifyFailed => "some game files are missing or modified; repair the install",
        PatchErrorCode.StateDirectoryUntrusted => $"the update folder {ex.Path} can be changed by another user, so it was not trusted; remove it or fix its owner and permissions",
        PatchErrorCode.StateDirectoryInsideInstall => "the launcher's update folder is inside the game folder; choose one beside it",
        PatchErrorCode.InstallInUse => "the game (or a program using its files) is running; close it and try again",
        PatchErrorCode.InstallEntryReplaced => "a program changed the game folder while it was being updated; the update was stopped and the game is unchanged; try again",
        PatchErrorCode.StateDirectoryInUse => "the update folder belongs to another copy of the game; give each copy its own",
        PatchErrorCode.NotManagedByPatcher => "this copy of the game was not installed by the launcher; install the full game first",
    };
#pragma warning restore CS8524
}
