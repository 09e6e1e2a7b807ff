using System.Globalization;

namespace PatchBench;

/// <summary>Command-line options. <c>--quick</c> sets small defaults; explicit flags override either set.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        bench: Patcher performance against baselines measured in the same run (ratios of medians).

        usage: dotnet run -c Release --project tools/bench -- [options]

          --quick                 small sizes, about a minute (default: full run, about ten minutes)
          --files N               files in the main tree (full 10000, quick 2000)
          --total-gb X            bytes in the main tree (full 2, quick 0.25)
          --change-pct P          share of bytes the next version changes (10)
          --runs N                timed runs per contender; medians are reported (full 5, quick 3; verify and scaling use at most 3)
          --big-file-gb X         size of the single file for the peak-memory check (full 4, quick 0.25; 0 skips)
          --scale-files A,B,C     install sizes (files) for the scaling check (full 1000,10000,100000; quick 500,2000,6000)
          --scale-total-gb X      bytes of each scaling install (full 0.5, quick 0.0625)
          --scale-changed-files N files the scaling patches rewrite (full 100, quick 25)
          --scale-changed-mb X    bytes the scaling patches write (full 100, quick 8)
          --recover-runs N        process launches per side for recover vs --version (full 20, quick 10)
          --sections LIST         apply,verify,recover,memory,scaling (default: all)
          --work DIR              work directory (default /tmp/patcher-bench-PID; deleted afterwards)
          --keep                  keep the work directory
          --patchtool PATH        use this patchtool apphost (default: a Release publish of tools/patchtool, cached
                                  in $TMPDIR/patcher-bench-patchtool and redone when sources change)
          --out FILE              markdown report (default <repo>/docs/benchmarks.md; the run's region is replaced)
          --no-write              print only
          --strace                also run one apply under 'strace -f -c' and print the syscall summary
          --prepare-only          write the main trees and patch into --work, print their paths, keep them, exit
                                  (for profiling by hand with strace/perf)
          --seed N                generator seed (default 20240611)
          --format2               instead of the sections above, the format-2 checks: apply of a compressible update
                                  against zstd -d (--patch-from) + write + sync, peak RSS of a delta to one large
                                  file, build throughput (written to its own region of the report)
          --f2-total-mb X         bytes of the compressible text-like tree (full 128, quick 32)
          --f2-big-mb X           size of the large file edited in places (full 4096, quick 256; 0 skips)
          --large-delta           instead, one large file edited in many places: patchtool apply (wall, CPU, peak RSS)
                                  against zstd -d --patch-from + sync of the same file (its own region of the report)
          --ld-mb X               size of that file (default 1024)
          --ld-edits N            places edited (default 1000)
          --ld-pct P              share of the file replaced by new bytes (default 5)
          --ld-level N            zstd level of the patch and of zstd's delta (default 3: decoding costs the same at
                                  any level, and level 19 on a 1 GiB file takes a long time)
          --patchtool-before PATH also apply with this patchtool (e.g. a build of an earlier commit), same patch, same runs
          --build                 instead, build throughput: a generated tree (four large pack files and many small
                                  files, text-like and incompressible) with --change-pct of its bytes changed, built at
                                  the default level and --build-levels, against cp -a + sync of the new tree and
                                  zstd -19 --long -T0 of exactly the changed bytes
          --build-total-gb X      bytes of the old tree (full 2, quick 0.25)
          --build-levels A,B,C    levels measured besides the default (default none)
          --update                instead, the update checks: bytes downloaded from a release store before (raw pieces)
                                  and after (zstd pieces, deltas) on fixtures/sample and a four-version series, and an
                                  update over loopback HTTP against curl + the same update from a local directory
          --up-total-mb X         bytes of each version of the series (full 256, quick 32)
          --up-level N            zstd level the store is published at (default 19, patchtool publish's default)
          --update-series A,B,C,D instead, four successive releases (directories or npm .tgz files): an install of A
                                  updated to D over loopback HTTP, from a store with single-step deltas and one
                                  without, against the sum of the three single steps and the full version
          --update-repair-mb X    instead (or with --update-series), a full repair over loopback HTTP of one X MiB
                                  file damaged in three 8-byte regions, against its damaged chunks and cp + sync
        """;

    public bool Quick { get; private set; }
    public int Files { get; private set; }
    public double TotalGb { get; private set; }
    public double ChangePct { get; private set; } = 10;
    public int Runs { get; private set; }
    public double BigFileGb { get; private set; }
    public int[] ScaleFiles { get; private set; } = [];
    public double ScaleTotalGb { get; private set; }
    public int ScaleChangedFiles { get; private set; }
    public double ScaleChangedMb { get; private set; }
    public int RecoverRuns { get; private set; }
    public HashSet<string> Sections { get; private set; } = [.. AllSections];
    public string Work { get; private set; } = Path.Join(Path.GetTempPath(), $"patcher-bench-{Environment.ProcessId}");
    public bool Keep { get; private set; }
    public string? PatchTool { get; private set; }
    public string? Out { get; private set; }
    public bool NoWrite { get; private set; }
    public bool Strace { get; private set; }
    public bool PrepareOnly { get; private set; }
    public ulong Seed { get; private set; } = 20240611;
    public bool Help { get; private set; }
    public bool Format2 { get; private set; }
    public double F2TotalMb { get; private set; }
    public double F2BigMb { get; private set; }
    public bool Update { get; private set; }
    public bool LargeDelta { get; private set; }
    public double LdMb { get; private set; } = 1024;
    public int LdEdits { get; private set; } = 1000;
    public double LdPct { get; private set; } = 5;
    public int LdLevel { get; private set; } = 3;
    public string? PatchToolBefore { get; private set; }
    public long LdBytes => (long)(LdMb * (1L << 20));
    public bool Build { get; private set; }
    public double BuildTotalGb { get; private set; }
    public int[] BuildLevels { get; private set; } = [];
    public long BuildTotalBytes => (long)(BuildTotalGb * (1L << 30));
    public double UpTotalMb { get; private set; }
    public int UpLevel { get; private set; } = 19;
    public string[] UpSeries { get; private set; } = [];
    public double UpRepairMb { get; private set; }
    public bool UpdateReal => UpSeries.Length > 0 || UpRepairMb > 0;
    public long UpTotalBytes => (long)(UpTotalMb * (1L << 20));

    public long F2TotalBytes => (long)(F2TotalMb * (1L << 20));
    public long F2BigBytes => (long)(F2BigMb * (1L << 20));

    public static readonly string[] AllSections = ["apply", "verify", "recover", "memory", "scaling"];

    public long TotalBytes => (long)(TotalGb * (1L << 30));
    public long BigFileBytes => (long)(BigFileGb * (1L << 30));
    public long ScaleTotalBytes => (long)(ScaleTotalGb * (1L << 30));
    public long ScaleChangedBytes => (long)(ScaleChangedMb * (1L << 20));

    public string Mode => UpdateReal ? (UpSeries.Length > 0 && UpRepairMb > 0 ? "update-real" : UpSeries.Length > 0 ? "update-series" : "update-repair") : (LargeDelta ? "large-delta-" : Format2 ? "format2-" : Update ? "update-" : Build ? "build-" : "") + (Quick ? "quick" : "full");

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions { Quick = args.Contains("--quick") };
        if (o.Quick)
        {
            o.Files = 2000;
            o.TotalGb = 0.25;
            o.Runs = 3;
            o.BigFileGb = 0.25;
            o.ScaleFiles = [500, 2000, 6000];
            o.ScaleTotalGb = 0.0625;
            o.ScaleChangedFiles = 25;
            o.ScaleChangedMb = 8;
            o.RecoverRuns = 10;
            o.F2TotalMb = 32;
            o.F2BigMb = 256;
            o.UpTotalMb = 32;
            o.BuildTotalGb = 0.25;
        }
        else
        {
            o.Files = 10000;
            o.TotalGb = 2;
            o.Runs = 5;
            o.BigFileGb = 4;
            o.ScaleFiles = [1000, 10000, 100000];
            o.ScaleTotalGb = 0.5;
            o.ScaleChangedFiles = 100;
            o.ScaleChangedMb = 100;
            o.RecoverRuns = 20;
            o.F2TotalMb = 128;
            o.F2BigMb = 4096;
            o.UpTotalMb = 256;
            o.BuildTotalGb = 2;
        }

        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Dbl() => double.Parse(Value(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--quick": break;
                case "--files": o.Files = Int(); break;
                case "--total-gb": o.TotalGb = Dbl(); break;
                case "--change-pct": o.ChangePct = Dbl(); break;
                case "--runs": o.Runs = Int(); break;
                case "--big-file-gb": o.BigFileGb = Dbl(); break;
                case "--scale-files": o.ScaleFiles = Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--scale-total-gb": o.ScaleTotalGb = Dbl(); break;
                case "--scale-changed-files": o.ScaleChangedFiles = Int(); break;
                case "--scale-changed-mb": o.ScaleChangedMb = Dbl(); break;
                case "--recover-runs": o.RecoverRuns = Int(); break;
                case "--sections":
                    o.Sections = [.. Value().Split(',')];
                    var unknown = o.Sections.Except(AllSections).ToList();
                    if (unknown.Count > 0) throw new ArgumentException($"unknown section(s) {string.Join(",", unknown)}; known: {string.Join(",", AllSections)}");
                    break;
                case "--work": o.Work = Path.GetFullPath(Value()); break;
                case "--keep": o.Keep = true; break;
                case "--patchtool": o.PatchTool = Path.GetFullPath(Value()); break;
                case "--out": o.Out = Path.GetFullPath(Value()); break;
                case "--no-write": o.NoWrite = true; break;
                case "--strace": o.Strace = true; break;
                case "--prepare-only": o.PrepareOnly = o.Keep = true; break;
                case "--seed": o.Seed = ulong.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--format2": o.Format2 = true; break;
                case "--f2-total-mb": o.F2TotalMb = Dbl(); break;
                case "--f2-big-mb": o.F2BigMb = Dbl(); break;
                case "--update": o.Update = true; break;
                case "--large-delta": o.LargeDelta = true; break;
                case "--ld-mb": o.LdMb = Dbl(); break;
                case "--ld-edits": o.LdEdits = Int(); break;
                case "--ld-pct": o.LdPct = Dbl(); break;
                case "--ld-level": o.LdLevel = Int(); break;
                case "--patchtool-before": o.PatchToolBefore = Path.GetFullPath(Value()); break;
                case "--build": o.Build = true; break;
                case "--build-total-gb": o.BuildTotalGb = Dbl(); break;
                case "--build-levels": o.BuildLevels = Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--up-total-mb": o.UpTotalMb = Dbl(); break;
                case "--up-level": o.UpLevel = Int(); break;
                case "--update-series": o.UpSeries = [.. Value().Split(',').Select(Path.GetFullPath)]; break;
                case "--update-repair-mb": o.UpRepairMb = Dbl(); break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        if (o.Files < 10) throw new ArgumentException("--files must be at least 10");
        if (o.Runs < 1) throw new ArgumentException("--runs must be at least 1");
        if (o.ChangePct is <= 0 or > 100) throw new ArgumentException("--change-pct must be in (0, 100]");
        return o;
    }
}
