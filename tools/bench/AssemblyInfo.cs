using System.Runtime.Versioning;

// The bench measures the Linux swap strategy, rsync, sha256sum and /proc: Linux only.
[assembly: SupportedOSPlatform("linux")]
