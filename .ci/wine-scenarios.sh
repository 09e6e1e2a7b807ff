#!/usr/bin/env bash
# Runs the layered commit's held-open-file scenarios under real Windows semantics: publishes
# tests/Patcher.WineScenarios self-contained for win-x64 and runs it under wine64 (Debian 12: package wine64,
# binary /usr/lib/wine/wine64). Installs wine64 when missing (as root). Ends with one line
# "N passed, N failed" for the scenarios. Exit status: non-zero when a scenario fails or the runner cannot be
# built; 0 with a "SKIPPED" line when Wine cannot be had or cannot start here (the reason is printed).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 MSBUILDTERMINALLOGGER=off

skip() {
    echo "wine scenarios SKIPPED: $*"
    echo "0 passed, 0 failed"
    exit 0
}

find_wine() {
    local c
    for c in wine64 /usr/lib/wine/wine64 wine; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

wine_bin="$(find_wine || true)"
if [ -z "$wine_bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then skip "wine64 is not installed and installing it needs root"; fi
    echo "==== installing wine64 (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update >/tmp/wine-apt.log 2>&1; then tail -5 /tmp/wine-apt.log; skip "apt-get update failed"; fi
    if ! apt-get install -y --no-install-recommends wine64 >>/tmp/wine-apt.log 2>&1; then
        tail -5 /tmp/wine-apt.log
        skip "apt-get install wine64 failed"
    fi
    wine_bin="$(find_wine || true)"
    [ -n "$wine_bin" ] || skip "wine64 installed but no wine64 binary found"
fi
echo "wine: $wine_bin"

out="$(mktemp -d)"
export WINEPREFIX="${WINEPREFIX:-$out/prefix}" WINEDEBUG=-all
trap 'wineserver_bin="$(dirname "$wine_bin")/wineserver"; [ -x "$wineserver_bin" ] && "$wineserver_bin" -k >/dev/null 2>&1; rm -rf "$out"' EXIT

echo "==== dotnet publish tests/Patcher.WineScenarios -r win-x64 --self-contained"
if ! dotnet publish tests/Patcher.WineScenarios/Patcher.WineScenarios.csproj -r win-x64 --self-contained -c Release -o "$out/bin" >"$out/publish.log" 2>&1; then
    tail -30 "$out/publish.log"
    echo "wine scenarios: the runner could not be published for win-x64"
    echo "0 passed, 1 failed"
    exit 1
fi

# A first start creates the Wine prefix (about 10 s); its failure means Wine itself cannot run here.
echo "==== wineboot"
if ! timeout 180 "$wine_bin" wineboot --init >"$out/wineboot.log" 2>&1; then
    tail -5 "$out/wineboot.log"
    skip "Wine cannot start here (wineboot failed)"
fi

echo "==== running the scenarios under $wine_bin"
timeout 300 "$wine_bin" "$out/bin/Patcher.WineScenarios.exe" 2>&1 | tr -d '\r' | grep -v ':fixme:' | tee "$out/run.log"
status=${PIPESTATUS[0]}
line="$(grep -E '^wine scenarios: [0-9]+ passed, [0-9]+ failed$' "$out/run.log" | tail -1)"
if [ -z "$line" ]; then
    if [ "$status" -eq 124 ]; then echo "wine scenarios: timed out after 300 s"; else echo "wine scenarios: the runner ended without a summary (exit $status)"; fi
    echo "0 passed, 1 failed"
    exit 1
fi
counts="${line#wine scenarios: }"
echo "$counts"
if [ "$status" -ne 0 ]; then exit 1; fi
exit 0
