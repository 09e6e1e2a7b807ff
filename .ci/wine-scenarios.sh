#!/usr/bin/env bash
# Windows end to end under Wine. Publishes patchtool and tests/Patcher.WineScenarios self-contained for win-x64 and runs
# them under wine64 (Debian 12: package wine64, binary /usr/lib/wine/wine64), installing wine64 when missing (as root):
#   1. the real patchtool.exe runs keygen -> build -> verify -> apply -> status -> verify-install on the sample game,
#      Ed25519 signatures checked, each step's exit code printed, and the install's hash listing compared with the new
#      version's (plus one refusal: apply trusting another key must exit 3 and change nothing);
#   2. the held-open-file scenarios, through Patcher.Apply and through patchtool.exe apply (signatures checked too), and
#      the reparse-point scenarios: a directory of the install renamed away while a step holds it (refused), junctions
#      planted in the install or swapped in during the layered commit (SKIP where the host cannot make a junction:
#      Wine 8.0 answers FSCTL_SET_REPARSE_POINT with error 50 and CreateSymbolicLinkW makes nothing).
# Ends with one line "N passed, N failed" (the end-to-end run counts as one). Exit status: non-zero when a step or a
# scenario fails, and when Wine cannot be installed or cannot start: a Windows build nobody ran is a failure, not a skip.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 MSBUILDTERMINALLOGGER=off

fail() {
    echo "wine scenarios FAILED: $*"
    echo "0 passed, 1 failed"
    exit 1
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
    if [ "$(id -u)" -ne 0 ]; then fail "wine64 is not installed and installing it needs root"; fi
    echo "==== installing wine64 (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update >/tmp/wine-apt.log 2>&1; then tail -5 /tmp/wine-apt.log; fail "apt-get update failed"; fi
    if ! apt-get install -y --no-install-recommends wine64 >>/tmp/wine-apt.log 2>&1; then
        tail -5 /tmp/wine-apt.log
        fail "apt-get install wine64 failed"
    fi
    wine_bin="$(find_wine || true)"
    [ -n "$wine_bin" ] || fail "wine64 installed but no wine64 binary found"
fi
echo "wine: $wine_bin"

out="$(mktemp -d)"
export WINEPREFIX="${WINEPREFIX:-$out/prefix}" WINEDEBUG=-all
trap 'wineserver_bin="$(dirname "$wine_bin")/wineserver"; [ -x "$wineserver_bin" ] && "$wineserver_bin" -k >/dev/null 2>&1; rm -rf "$out"' EXIT

# ReadyToRun is off: it would precompile for win-x64 with a cross-compiler pack, a minute more for runs this short.
publish() {
    local project="$1" dest="$2"
    echo "==== dotnet publish $project -r win-x64 --self-contained"
    if ! dotnet publish "$project" -r win-x64 --self-contained -c Release -p:PublishReadyToRun=false -o "$dest" >"$out/publish.log" 2>&1; then
        tail -30 "$out/publish.log"
        fail "$project could not be published for win-x64"
    fi
}
publish tools/patchtool/patchtool.csproj "$out/patchtool"
publish tests/Patcher.WineScenarios/Patcher.WineScenarios.csproj "$out/bin"

# A first start creates the Wine prefix (about 10 s); its failure means Wine itself cannot run here.
echo "==== wineboot"
if ! timeout 180 "$wine_bin" wineboot --init >"$out/wineboot.log" 2>&1; then
    tail -5 "$out/wineboot.log"
    fail "Wine cannot start here (wineboot failed)"
fi

# ---- 1. patchtool.exe end to end -------------------------------------------------------------------------------------
echo "==== patchtool.exe end to end under Wine (sample game 1.0.0 -> 1.1.0, Ed25519)"
e2e="$out/e2e"
mkdir -p "$e2e"
cp -r fixtures/sample/v1 "$e2e/v1"
cp -r fixtures/sample/v2 "$e2e/v2"
mkdir -p "$e2e/v2/mods"   # fixtures/sample/layout.txt: the empty directory git cannot store
cp -r "$e2e/v1" "$e2e/game"
mkdir -p "$e2e/game/saves" && printf 'the player'"'"'s save' >"$e2e/game/saves/slot1.sav"
cp -r "$e2e/v2" "$e2e/expected"
mkdir -p "$e2e/expected/saves" && cp "$e2e/game/saves/slot1.sav" "$e2e/expected/saves/slot1.sav"

win() { printf 'Z:%s' "${1//\//\\}"; }   # the Unix path as Wine's Z: drive shows it
e2e_failed=0
step() {
    # step NAME EXPECTED_EXIT ARGS...: runs patchtool.exe ARGS, prints its output and "e2e step NAME: exit N".
    local name="$1" expected="$2" status
    shift 2
    timeout 120 "$wine_bin" "$out/patchtool/patchtool.exe" "$@" >"$out/step.log" 2>&1
    status=$?
    tr -d '\r' <"$out/step.log" | grep -v ':fixme:' | sed 's/^/    /'
    if [ "$status" -eq "$expected" ]; then
        echo "e2e step $name: exit $status"
    else
        echo "e2e step $name: exit $status (expected $expected) FAILED"
        e2e_failed=1
    fi
}

# "path size sha256" for each file and "path/" for each directory, sorted; the install's identity marker
# (.patcher-install) is Patcher's and not part of any version.
listing() {
    (cd "$1" && find . -mindepth 1 ! -name .patcher-install -printf '%P %y\n' | LC_ALL=C sort | while read -r path kind; do
        if [ "$kind" = d ]; then echo "$path/"; else echo "$path $(stat -c %s "$path") $(sha256sum <"$path" | cut -d' ' -f1)"; fi
    done)
}

step keygen 0 keygen --out "$(win "$e2e/keys")"
step keygen-other 0 keygen --out "$(win "$e2e/other-keys")"
step build 0 build --from "$(win "$e2e/v1")" --to "$(win "$e2e/v2")" --out "$(win "$e2e/patch")" \
    --key "$(win "$e2e/keys/signing.key")" --product sample-game --version 1.1.0 --from-version 1.0.0
step verify 0 verify --patch "$(win "$e2e/patch")" --trust "$(win "$e2e/keys/signing.pub")"
listing "$e2e/game" >"$out/before.txt"
step apply-trusting-another-key 3 apply --patch "$(win "$e2e/patch")" --target "$(win "$e2e/game")" --trust "$(win "$e2e/other-keys/signing.pub")"
if listing "$e2e/game" | cmp -s - "$out/before.txt"; then
    echo "e2e check: the refused apply left the install unchanged"
else
    echo "e2e check: the refused apply changed the install FAILED"
    e2e_failed=1
fi
step apply 0 apply --patch "$(win "$e2e/patch")" --target "$(win "$e2e/game")" --trust "$(win "$e2e/keys/signing.pub")"
step status 0 status --target "$(win "$e2e/game")"
tr -d '\r' <"$out/step.log" | grep -q '^version      1.1.0$' || { echo "e2e check: status does not say version 1.1.0 FAILED"; e2e_failed=1; }
step verify-install 0 verify-install --target "$(win "$e2e/game")"

echo "install after apply (hash listing, .patcher-install left out):"
listing "$e2e/game" | tee "$out/after.txt" | sed 's/^/    /'
if listing "$e2e/expected" | cmp -s - "$out/after.txt"; then
    echo "e2e check: the install's hash listing equals version 1.1.0's plus the player's save"
else
    echo "e2e check: the install differs from version 1.1.0 FAILED"
    listing "$e2e/expected" | diff - "$out/after.txt" | sed 's/^/    /'
    e2e_failed=1
fi
if [ "$e2e_failed" -eq 0 ]; then echo "PASS patchtool-end-to-end"; else echo "FAIL patchtool-end-to-end"; fi

# ---- 2. held-open files ----------------------------------------------------------------------------------------------
echo "==== running the scenarios under $wine_bin"
PATCHTOOL_EXE="$(win "$out/patchtool/patchtool.exe")" timeout 600 "$wine_bin" "$out/bin/Patcher.WineScenarios.exe" 2>&1 | tr -d '\r' | grep -v ':fixme:' | tee "$out/run.log"
status=${PIPESTATUS[0]}
line="$(grep -E '^wine scenarios: [0-9]+ passed, [0-9]+ failed$' "$out/run.log" | tail -1)"
if [ -z "$line" ]; then
    if [ "$status" -eq 124 ]; then echo "wine scenarios: timed out after 600 s"; else echo "wine scenarios: the runner ended without a summary (exit $status)"; fi
    echo "$((1 - e2e_failed)) passed, $((1 + e2e_failed)) failed"
    exit 1
fi
[[ ${line#wine scenarios: } =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]
passed=$((BASH_REMATCH[1] + 1 - e2e_failed)) failed=$((BASH_REMATCH[2] + e2e_failed))
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$e2e_failed" -ne 0 ]; then exit 1; fi
exit 0
