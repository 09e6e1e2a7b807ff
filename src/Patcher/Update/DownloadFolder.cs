using Patching.IO;
using Patching.Manifests;
using Patching.State;

namespace Patching.Update;

/// <summary>
/// The download folder in the state directory, <c>&lt;state&gt;/downloads</c>: one patch directory per version being
/// fetched, and the highest channel sequence seen. Everything written there is written under a temporary name and
/// renamed, so a kill never leaves half a file under a final name.
/// </summary>
internal static class DownloadFolder
{
    public const string DirName = "downloads";

    /// <summary>The state layout the transaction will use: the one inside the install when it exists, else the one beside it.</summary>
    public static StateLayout Layout(string installDir, PatcherOptions options)
    {
        var primary = new StateLayout(installDir, options.StateDirectory);
        var inside = new StateLayout(installDir, Path.Join(installDir, StateLayout.InsideStateName));
        return Directory.Exists(inside.StateDir) ? inside : primary;
    }

    /// <summary>The download folder of <paramref name="layout"/>, whether or not it exists.</summary>
    public static string PathOf(StateLayout layout) => Path.Join(layout.StateDir, DirName);

    /// <summary>
    /// Makes the download folder in the state directory, as the transaction would make the state directory (durably,
    /// beside the install). Where nothing beside the install can be written, the state goes inside it, where the
    /// transaction then finds it and uses the layered strategy.
    /// </summary>
    public static string Create(string installDir, ref StateLayout layout)
    {
        try
        {
            TreeOps.CreateDirectoriesDurably(FileOps.Instance, PathOf(layout));
        }
        catch (PatcherException ex) when (ex.Code == PatchErrorCode.AccessDenied && !layout.IsInsideInstall)
        {
            layout = new StateLayout(installDir, Path.Join(installDir, StateLayout.InsideStateName));
            TreeOps.CreateDirectoriesDurably(FileOps.Instance, PathOf(layout));
        }

        return PathOf(layout);
    }

    /// <summary>
    /// Deletes the download folders of versions not newer than <paramref name="installed"/>. An update killed after its
    /// commit but before it removed its folder leaves every piece of that version there; the next run finds the install
    /// up to date, and this is where that folder goes. Folders of newer versions are kept: they are a resumable download.
    /// </summary>
    public static void Prune(StateLayout layout, string? installed)
    {
        var downloads = PathOf(layout);
        if (installed is null || !Directory.Exists(downloads)) return;
        var current = PatchVersion.Parse(installed, "installed version");
        foreach (var dir in Directory.EnumerateDirectories(downloads))
        {
            if (PatchVersion.TryParse(Path.GetFileName(dir), out var version) && version <= current) TryDelete(dir);
        }
    }

    /// <summary>A verified piece under its final name; a temporary name until complete, so a kill never leaves half a piece there.</summary>
    public static void WritePiece(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        WriteReplacing(path, bytes);
    }

    public static void WriteReplacing(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + "." + StateLayout.RandomTag() + ".tmp";
        File.WriteAllBytes(temp, bytes.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Bytes of the files directly in <paramref name="dir"/> (what an earlier run already fetched there).</summary>
    public static long BytesPresent(string dir) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length) : 0;

    public static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the next update, which reuses or replaces what it finds.
        }
    }
}
