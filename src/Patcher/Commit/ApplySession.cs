using Microsoft.Extensions.Logging;
using Patching.IO;
using Patching.Journal;
using Patching.Sources;
using Patching.Staging;
using Patching.State;

namespace Patching.Commit;

/// <summary>
/// One apply, as an object: what it works on (install and state, verified package, options, progress, cancellation)
/// and what its steps produce in turn (the lock and journal, the plan, the received blobs, the transaction). Made once
/// the patch has passed its checks; disposing it releases the journal and the lock.
/// </summary>
internal sealed class ApplySession(IFileOps fs, PatchPackage package, IReadOnlyList<string> keyIds, PatcherOptions options) : IDisposable
{
    public IFileOps Fs => fs;
    public PatchPackage Package => package;
    /// <summary>The ids of the keys that verified <see cref="Package"/>, recorded with the transaction.</summary>
    public IReadOnlyList<string> KeyIds => keyIds;
    public PatcherOptions Options => options;
    public ILogger Log => options.Logger;
    public required IProgress<PatchProgress>? Progress { get; init; }
    public required CancellationToken Cancellation { get; init; }

    /// <summary>Where the state is; moves inside the install when nothing beside it can be written.</summary>
    public required StateLayout Layout { get; set; }
    public CommitStrategy Strategy { get; set; }
    public TransactionLock? Lock { get; set; }
    public JournalStore? Journal { get; set; }
    /// <summary>What the journal says is installed, when the install is the one it recorded.</summary>
    public InstalledRecord? Installed { get; set; }
    /// <summary>An interrupted staging of this same patch, resumed instead of started again.</summary>
    public TxRecord? Resumable { get; set; }
    public ApplyPlan Plan { get; set; } = null!;
    public ReceivedBlobs Received { get; set; } = null!;
    public TxRecord Tx { get; set; } = null!;

    public bool Resumed => Resumable is not null;

    /// <summary>The journal, once the state is open.</summary>
    public JournalStore OpenJournal => Journal ?? throw new InvalidOperationException("the journal is not open yet");

    public CommitContext Context => new(fs, Layout, OpenJournal, LockRetry.For(fs, options, Layout.InstallDir), Log);

    public void Dispose()
    {
        Journal?.Dispose();
        Journal = null;
        Lock?.Dispose();
        Lock = null;
    }
}
