using System.Globalization;
using System.Runtime.InteropServices;

namespace PatchBench;

/// <summary>What the numbers were measured on: they mean little without it.</summary>
internal static class Machine
{
    public static List<(string Key, string Value)> Describe(string workDir)
    {
        var rows = new List<(string, string)>
        {
            ("CPU", $"{Environment.ProcessorCount} × {CpuModel()}{Hypervisor()}"),
            ("memory", MemTotal()),
            ("disk", Disk(workDir)),
            ("kernel", $"{Environment.OSVersion.VersionString} ({Os()})"),
            (".NET", RuntimeInformation.FrameworkDescription),
            ("tools", Tools()),
            ("load average at start", Safe(() => File.ReadAllText("/proc/loadavg").Trim())),
        };
        return rows;
    }

    private static string CpuModel() => Safe(() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?");

    private static string Hypervisor() => Safe(() =>
    {
        var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        var parts = new List<string>();
        if (flags.Contains(" hypervisor", StringComparison.Ordinal)) parts.Add("virtual machine");
        if (flags.Contains(" sha_ni", StringComparison.Ordinal)) parts.Add("SHA-NI");
        return parts.Count == 0 ? "" : $" ({string.Join(", ", parts)})";
    });

    private static string MemTotal() => Safe(() =>
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return Fmt.Bytes(kb * 1024);
    });

    private static string Disk(string dir) => Safe(() =>
    {
        var mnt = Proc.Run("findmnt", ["-n", "-o", "MAJ:MIN,SOURCE,FSTYPE,OPTIONS", "-T", dir]).Out.Trim();
        var parts = mnt.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var majMin = parts.ElementAtOrDefault(0) ?? "?";
        var source = parts.ElementAtOrDefault(1) ?? "?";
        var fstype = parts.ElementAtOrDefault(2) ?? "?";
        var opts = parts.ElementAtOrDefault(3) ?? "";
        var drive = new DriveInfo(dir);
        var dev = Path.GetFileName(source);
        var rot = Safe(() => File.ReadAllText($"/sys/block/{dev}/queue/rotational").Trim() == "1" ? "rotational" : "non-rotational");
        var sched = Safe(() => File.ReadAllText($"/sys/block/{dev}/queue/scheduler").Trim());
        var model = Safe(() => File.ReadAllText($"/sys/block/{dev}/device/model").Trim(), "");
        var virtio = dev.StartsWith("vd", StringComparison.Ordinal) ? "virtio block device, " : "";
        // ext4 without a journal skips inodes freed in the last minute when it allocates one (see docs/benchmarks.md,
        // sixth round), so whether there is one matters to every contender that creates files.
        // /proc/fs/jbd2 names journals by the kernel's device name (dm-0, not vg-root), found through MAJ:MIN.
        var kernelDev = Safe(() => Path.GetFileName(new DirectoryInfo(Path.Join("/sys/dev/block", majMin)).LinkTarget ?? dev), dev);
        var journal = fstype == "ext4" && Directory.Exists("/proc/fs/jbd2")
            ? Directory.EnumerateDirectories("/proc/fs/jbd2", kernelDev + "-*").Any() ? ", with a journal" : ", no journal (or an external one)"
            : "";
        return $"{source} ({virtio}{rot}{(model.Length > 0 ? ", " + model : "")}), {fstype}{journal} ({opts}), " +
               $"{Fmt.Bytes(drive.TotalSize)} total, {Fmt.Bytes(drive.AvailableFreeSpace)} free; scheduler {sched}";
    });

    private static string Os() => Safe(() =>
        File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?.Split('=', 2)[1].Trim('"') ?? "?");

    private static string Tools() => Safe(() =>
    {
        var rsync = Proc.Exists("rsync") ? Proc.Run("rsync", ["--version"]).Out.Split('\n')[0].Replace("  ", " ", StringComparison.Ordinal) : "rsync missing";
        var sha = Proc.Run("sha256sum", ["--version"]).Out.Split('\n')[0];
        return $"{rsync}; {sha}";
    });

    private static string Safe(Func<string> f, string fallback = "?")
    {
        try
        {
            return f();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or FormatException
                                       or System.ComponentModel.Win32Exception or ArgumentException)
        {
            return fallback;
        }
    }
}
