using Patching.IO;
using Patching.Manifests;

namespace Patching.Staging;

/// <summary>How one file's content gets into the shadow tree: a link, a copy of a received file, or written from blobs.</summary>
internal sealed partial class ShadowTreeBuilder
{
    private bool Claim(string source) => _linked.TryAdd(source, 0);

    /// <summary>
    /// Places a file written from one received blob: a hard link to the received file for the first such file (with
    /// the same executable bit), a copy of it for any other (a second file with the same content, or another mode),
    /// so no two files of the install share an inode: a game that rewrites one of them in place must not change the
    /// other. The received file was verified and fsynced; copying it reads no byte of the patch again.
    /// </summary>
    private bool TryPlaceReceived(TargetFile f, string staged)
    {
        if (request.Received is not { } received || f.Parts.Count != 1 || !received.TryGet(f.Parts[0].Sha256, out var path, out var x)) return false;
        if (x == f.Executable && Claim("received:" + f.Parts[0].Sha256) && fs.TryHardLink(path, staged)) return true;
        using var input = fs.OpenRead(path);
        using var output = fs.Create(staged);
        input.CopyTo(output, ContentHash.BufferSize);
        if (f.Executable) fs.SetExecutable(staged, true); // before the fsync, as in WriteContent
        fs.Sync(output);
        return true;
    }

    private bool TryLink(FileSource src, string staged)
    {
        // A hard link shares the inode, so the executable bit would change in the old tree too: copy instead.
        // The bit is the one the plan's walk saw moments ago: a chmod racing the apply could slip past it just as it
        // could slip between a fresh stat and the link, so the walk's answer is as good and saves a stat per file.
        if (src.ReuseInfo.Executable != src.File.Executable && !OperatingSystem.IsWindows()) return false;
        // One link per source: a second file with the same content is copied (and verified) instead, so that the
        // new install has no two files sharing an inode.
        return Claim("install:" + src.ReuseFrom) && fs.TryLinkWalkedFile(request.Plan.Walked ?? new WalkedTree(_installDir), src.ReuseFrom!, src.ReuseInfo, staged);
    }

    private string WriteContent(string staged, FileSource src, Action<long> onBytes, CancellationToken ct)
    {
        var f = src.File;
        string observed;
        using (var output = fs.Create(staged))
        {
            if (src.ReuseFrom is not null)
            {
                // Copy from the old version, verifying the content really is what the base promised.
                var from = PathRules.Join(_installDir, src.ReuseFrom);
                using var input = fs.OpenRead(from);
                var (length, hash) = ContentHash.CopyAndHash(input, output, f.Size, onBytes, ct);
                if (length != f.Size || hash != f.Sha256)
                    throw new PatcherException(PatchErrorCode.BaseMismatch, $"'{src.ReuseFrom}' changed while it was being copied", src.ReuseFrom);
                observed = hash;
            }
            else
            {
                foreach (var part in f.Parts) request.Package!.CopyBlob(part.Sha256, output, onBytes, ct);
                observed = f.Parts.Count == 1 ? f.Parts[0].Sha256 : f.Sha256;
            }

            // The mode is inode metadata: only an fsync of this inode after the chmod makes it durable. Set after
            // the fsync, a power cut could leave a journaled, "verified" file that has lost its executable bit.
            if (f.Executable) fs.SetExecutable(staged, true);
            fs.Sync(output);
        }

        if (f.Parts.Count > 1)
        {
            using var check = fs.OpenRead(staged);
            observed = ContentHash.OfStream(check, ct);
            if (observed != f.Sha256)
                throw new PatcherException(PatchErrorCode.BlobHashMismatch, $"'{f.Path}' assembled from its parts has SHA-256 {observed}, declared {f.Sha256}", f.Path);
        }

        return observed;
    }
}
