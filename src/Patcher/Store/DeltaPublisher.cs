using Patching.Building;
using Patching.Manifests;
using Patching.Sources;

namespace Patching.Store;

/// <summary>
/// The optional format 2 delta a version is published with: built from an older published version to the new tree and
/// stored in <c>versions/&lt;v&gt;/deltas/&lt;from&gt;/</c>.
/// </summary>
internal static class DeltaPublisher
{
    /// <summary>
    /// Builds the format 2 patch from <see cref="PublishRequest.DeltaFrom"/> (rebuilt from the store's own pieces, so
    /// the delta's base is exactly what clients of that version hold) to the published tree, and moves it into
    /// <c>versions/&lt;v&gt;/deltas/&lt;from&gt;/</c>, the manifest last. Returns its size.
    /// </summary>
    public static long Build(PublishRequest request, CancellationToken ct)
    {
        var work = Path.Join(request.StoreDir, "." + StoreFiles.TempTag() + ".publish");
        try
        {
            var baseDir = Path.Join(work, "base");
            PieceStore.Materialize(request.StoreDir, request.DeltaFrom!, baseDir, ct);
            var outDir = Path.Join(work, "delta");
            PatchBuilder.Build(new BuildRequest
            {
                FromDir = baseDir, ToDir = request.TreeDir, OutDir = outDir, Product = request.Product, Version = request.Version,
                FromVersion = request.DeltaFrom, PrivateKeyPem = request.PrivateKeyPem, Format = MessagePackManifest.Format,
                Level = request.Level, Time = request.Time,
            }, ct);
            var target = Path.Join(request.StoreDir, SourceNames.DeltaDir(request.Version, request.DeltaFrom!));
            Directory.CreateDirectory(target);
            long bytes = 0;
            foreach (var name in new[] { ReleaseStore.DeltaPayloadName, ManifestCodec.SignatureFileName, ManifestCodec.BinaryManifestFileName })
            {
                var file = Path.Join(outDir, name);
                if (!File.Exists(file)) continue;
                bytes += new FileInfo(file).Length;
                File.Move(file, Path.Join(target, name), overwrite: true);
            }

            return bytes;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }
}
