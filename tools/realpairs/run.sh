#!/usr/bin/env bash
# Real version pairs: the bytes of a Patcher patch next to per-file delta tools (xdelta3, zstd --patch-from,
# bsdiff) and whole-version compression (zstd -19), on successive releases of public npm packages, on cases
# generated from them where content moves between files, and on one package three versions behind.
#
# A measurement program, not a test: neither the test suite nor CI runs it. Packages are fetched with
# `npm pack` into a cache outside the repository and reused; see --help and docs/benchmarks.md.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO
# Generated trees are rebuilt when the recipe changes: bump this with any edit to make_moved_case.
readonly GEN_RECIPE=2

usage() {
    cat <<'EOF'
Usage: bash tools/realpairs/run.sh [options]

Measures, per version pair: per-file xdelta3 -9, zstd -19 --long --patch-from and bsdiff over changed files
(added files at zstd -19), the best of them per file, the new version as one tar at zstd -19, a whole-tree
zstd --patch-from, and Patcher's own patch (payload, manifest, whole). Prints a markdown report.

Options:
  --quick          fewer pairs (a compiler patch release, a rebuilt binary, an icon set, one moved case)
  --fresh          measure the external tools again (by default their numbers for the same two trees, tool
                   versions and commands are reused from the cache; Patcher's patch is always built anew)
  --only IDS       comma-separated pair ids to run (see --list; "chain" is the three-versions-behind case)
  --list           print the pairs and exit
  --formats LIST   Patcher formats to build, e.g. "1 2" (default: "1 2" when patchtool build knows
                   --format, otherwise 1)
  --patcher-ref R  measure the patchtool of git commit/branch R (exported to the work folder and built
                   there) instead of this working tree's, e.g. --patcher-ref some-branch
  --level N        zstd level for format 2 (patchtool build --level N; default: patchtool's)
  --jobs N         per-file tools run N at a time (default: number of CPUs)
  --cache DIR      package cache (default: ${XDG_CACHE_HOME:-~/.cache}/patcher-realpairs)
  --out FILE       also write the report to FILE
  --write          replace this mode's region of docs/benchmarks.md with the report
  -h, --help       this text

Needs npm, tar, jq, zstd, xdelta3, bsdiff and the .NET SDK; the Debian packages are installed with apt-get
when missing and running as root. Downloads go to the cache (about 40 MB of packages, 450 MB unpacked with
the generated cases); work files to a temporary directory, deleted afterwards.
EOF
}

die() { printf 'realpairs: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'realpairs: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------- options
# The options that shape the measurement, for the report's command line (--out and --write only say where
# the report goes).
ARGS_GIVEN=""
QUICK=0; FRESH=0; ONLY=""; LIST=0; PATCHER_REF=""; FORMATS=""; LEVEL=""; JOBS=$(nproc 2>/dev/null || echo 1); OUT=""; WRITE=0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/patcher-realpairs
while (($#)); do
    opt=$1 val=""
    case $opt in
        --only|--formats|--patcher-ref|--level|--jobs|--cache|--out)
            (($# >= 2)) || die "$opt needs a value (see --help)"; val=$2; shift ;;
    esac
    case $opt in
        --quick) QUICK=1 ;;
        --fresh) FRESH=1 ;;
        --only) ONLY=$val ;;
        --list) LIST=1 ;;
        --formats) FORMATS=$val ;;
        --patcher-ref) PATCHER_REF=$val ;;
        --level) LEVEL=$val ;;
        --jobs) JOBS=$val ;;
        --cache) CACHE=$val ;;
        --out) OUT=$val ;;
        --write) WRITE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$opt'" ;;
    esac
    [[ $val == *' '* ]] && val="\"$val\""
    [[ $opt == --out || $opt == --write ]] || ARGS_GIVEN+=" $opt${val:+ $val}"
    shift
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs '$JOBS' is not a positive number"
[[ -z $LEVEL || $LEVEL =~ ^-?[0-9]+$ ]] || die "--level '$LEVEL' is not a number"
MODE=full; ((QUICK)) && MODE=quick
[[ -n $ONLY ]] && MODE=only
readonly DOC=$REPO/docs/benchmarks.md
readonly REGION_BEGIN="<!-- realpairs:$MODE:begin (written by tools/realpairs/run.sh; edits inside are overwritten) -->"
readonly REGION_END="<!-- realpairs:$MODE:end -->"
if ((WRITE)); then
    [[ $MODE != only ]] || die "--write records a full or a --quick run, not --only"
    grep -qxF "$REGION_BEGIN" "$DOC" && grep -qxF "$REGION_END" "$DOC" || die "$DOC lacks the lines '$REGION_BEGIN' and '$REGION_END'"
fi

# ------------------------------------------------------------------------------------------------ pairs
# id | kind | package | old | new | what it stands for. kind npm: two published versions; kind gen: trees
# generated from one published version (package@old) by make_moved_case.
readonly PAIRS=(
    "ts-patch|npm|typescript|5.9.2|5.9.3|compiler, patch release"
    "ts-minor|npm|typescript|5.8.3|5.9.2|compiler, minor release; lib/_tsc.js and lib/typescript.js share most code"
    "esbuild|npm|@esbuild/linux-x64|0.28.1|0.28.2|one native executable (11 MB) rebuilt"
    "icons|npm|@tabler/icons|3.52.0|3.54.0|12,130 small files (SVG icons, each also under categories/)"
    "three|npm|three|0.186.1|0.187.0|3D engine: wasm and JS decoders, five builds sharing much of their code"
    "moved-rename|gen|three|0.187.0|rename|src/ renamed to source/, examples/jsm/libs/ to examples/jsm/vendor/"
    "moved-split|gen|three|0.187.0|split|one bundle split in four files, two folders each merged into one file"
    "moved-pack|gen|three|0.187.0|pack|examples/jsm/ as one pack file (tar), rebuilt with its entries in reverse order"
)
readonly QUICK_IDS="ts-patch esbuild icons moved-split"
# Three versions behind (A, B, C, D): A->D against A->B + B->C + C->D against the whole of D.
readonly CHAIN_PACKAGE="@esbuild/linux-x64"
readonly CHAIN=(0.27.7 0.28.0 0.28.1 0.28.2)

if ((LIST)); then
    for p in "${PAIRS[@]}"; do IFS='|' read -r id kind pkg old new what <<<"$p"; printf '%-13s %s %s -> %s: %s\n' "$id" "$pkg" "$old" "$new" "$what"; done
    printf '%-13s %s %s (full runs only)\n' chain "$CHAIN_PACKAGE" "${CHAIN[*]}"
    exit 0
fi

if [[ -n $ONLY ]]; then
    known=" chain "; for p in "${PAIRS[@]}"; do known+="${p%%|*} "; done
    IFS=',' read -ra wanted <<<"$ONLY"
    for w in "${wanted[@]}"; do [[ $known == *" $w "* ]] || die "--only: no pair '$w' (pairs:$known)"; done
fi

selected() { # id: whether this run measures that pair
    if [[ -n $ONLY ]]; then [[ ",$ONLY," == *",$1,"* ]]; return; fi
    if ((QUICK)); then [[ " $QUICK_IDS " == *" $1 "* ]]; return; fi
    return 0
}

# ------------------------------------------------------------------------------------------------ tools
need_tools() {
    local missing=() cmd pkg
    for cmd in tar:tar jq:jq zstd:zstd xdelta3:xdelta3 bsdiff:bsdiff; do
        command -v "${cmd%%:*}" >/dev/null || missing+=("${cmd#*:}")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]} with apt-get"
            apt-get update -qq >&2 || die "apt-get update failed; install ${missing[*]} by hand"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
        else
            die "missing tools: ${missing[*]} (install them, e.g. sudo apt-get install -y ${missing[*]})"
        fi
    fi
    command -v npm >/dev/null || die "npm not found: install Node.js (e.g. apt-get install -y npm) to fetch packages"
    command -v dotnet >/dev/null || die "dotnet not found: the .NET 10 SDK is needed to build tools/patchtool"
}

# ----------------------------------------------------------------------------------------------- cache
key_of() { printf '%s@%s' "$1" "$2" | tr '/' '+'; }

fetch_tree() { # package version: prints the unpacked tree (cached)
    local pkg=$1 ver=$2 key tgz tree tmp json file tops
    key=$(key_of "$pkg" "$ver"); tgz=$CACHE/tgz/$key.tgz; tree=$CACHE/trees/$key
    if [[ -f $tree.ok && -d $tree ]]; then printf '%s\n' "$tree"; return; fi
    mkdir -p "$CACHE/tgz" "$CACHE/trees"
    if [[ ! -f $tgz ]]; then
        say "npm pack $pkg@$ver"
        tmp=$(mktemp -d "$CACHE/tgz/.pack.XXXXXX")
        if ! json=$(cd "$tmp" && npm pack "$pkg@$ver" --json --silent 2>"$tmp/err"); then
            cat "$tmp/err" >&2; rm -rf "$tmp"; die "npm pack $pkg@$ver failed (does the version exist? npm view $pkg versions)"
        fi
        file=$(jq -r '.[0].filename' <<<"$json")
        [[ -f $tmp/$file ]] || { rm -rf "$tmp"; die "npm pack $pkg@$ver reported '$file' but wrote no such file"; }
        mv "$tmp/$file" "$tgz"; rm -rf "$tmp"
    fi
    # npm tarballs hold one top folder (usually package/); the tree is its contents.
    tops=$(tar -tzf "$tgz" | cut -d/ -f1 | sort -u | wc -l)
    [[ $tops == 1 ]] || die "$tgz has $tops top-level entries, expected one folder"
    rm -rf "$tree" "$tree.ok"; mkdir -p "$tree"
    tar -xzf "$tgz" -C "$tree" --strip-components=1 --no-same-owner
    touch "$tree.ok"
    printf '%s\n' "$tree"
}

# Deterministic tar of a tree (name order, fixed owner and time), for whole-version compression and packs.
tar_tree() { # dir out [file list, in the order wanted; default: every file in name order]
    local dir=$1 out=$2 list=${3:-}
    if [[ -z $list ]]; then
        tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$out" .
    else
        tar --no-recursion --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$out" -T "$list"
    fi
}

# Content moved between files, generated from one real tree. Per-file tools pair files by path, so a file at
# a new path (renamed, split, merged) is sent whole; the pack case keeps its path and reorders its content.
make_moved_case() { # case base: prints "old<TAB>new" trees (cached)
    local case=$1 base=$2 dir old new f
    dir=$CACHE/gen/r$GEN_RECIPE-$(basename "$base")-$case
    if [[ -f $dir.ok ]]; then
        old=$base; [[ -d $dir/old ]] && old=$dir/old
        printf '%s\t%s\n' "$old" "$dir/new"; return
    fi
    rm -rf "$dir" "$dir.ok"; mkdir -p "$dir"
    # Only the pack case changes the old version; the others start from the published tree itself.
    old=$base; new=$dir/new
    cp -a "$base" "$new"
    case $case in
        rename)
            mv "$new/src" "$new/source"
            mv "$new/examples/jsm/libs" "$new/examples/jsm/vendor"
            ;;
        split)
            f=$new/build/three.webgpu.nodes.js
            [[ -f $f ]] || die "$f missing: the split case expects three's build/three.webgpu.nodes.js"
            mkdir -p "$new/build/webgpu-nodes"
            split -n l/4 -d -a 1 --additional-suffix=.js "$f" "$new/build/webgpu-nodes/part-"
            rm "$f"
            for f in src/math examples/jsm/loaders; do
                [[ -d $new/$f ]] || die "$new/$f missing: the split case merges that folder"
                (cd "$new/$f" && find . -type f -printf '%P\n' | LC_ALL=C sort | tr '\n' '\0' | xargs -0 cat) >"$new/$f.merged.js"
                rm -r "${new:?}/$f"
            done
            ;;
        pack)
            [[ -d $base/examples/jsm ]] || die "$base/examples/jsm missing: the pack case packs that folder"
            old=$dir/old; cp -a "$base" "$old"
            (cd "$base/examples/jsm" && find . -type f | LC_ALL=C sort) >"$dir/order.old"
            LC_ALL=C sort -r "$dir/order.old" >"$dir/order.new"
            rm -r "$old/examples/jsm" "$new/examples/jsm"
            tar_tree "$base/examples/jsm" "$old/examples/jsm.pack" "$dir/order.old"
            tar_tree "$base/examples/jsm" "$new/examples/jsm.pack" "$dir/order.new"
            rm "$dir/order.old" "$dir/order.new"
            ;;
        *) die "unknown generated case '$case'" ;;
    esac
    touch "$dir.ok"
    printf '%s\t%s\n' "$old" "$new"
}

# ------------------------------------------------------------------------------------------- measuring
# The commands, once: the report prints them as they are run.
readonly XDELTA=(xdelta3 -9 -e -f -s)          # OLD NEW OUT
readonly ZSTD_PF=(zstd -q -f -19)               # --long=W --patch-from=OLD NEW -o OUT
readonly BSDIFF=(bsdiff)                        # OLD NEW OUT
readonly ZSTD_WHOLE=(zstd -q -f -19)            # FILE -o OUT
# bsdiff needs about 17x the old file in memory and time that grows faster than its size: skipped above this.
readonly BSDIFF_MAX=$((256 * 1024 * 1024))
# Bump with any change to how the external tools are run or summed: cached numbers are keyed by it.
readonly MEASURE_RECIPE=1

wlog_for() { # bytes: zstd window log covering that many bytes, at least 27 (--long's default)
    local n=$1 w=27
    while (( w < 31 && (1 << w) < n )); do w=$((w + 1)); done
    printf '%s\n' "$w"
}

fsize() { stat -c %s "$1"; }

# One changed file: prints "rel<TAB>new bytes<TAB>xdelta3<TAB>zstd<TAB>bsdiff" (bsdiff "-" when skipped).
measure_changed() {
    local rel=$1 o=$OLD_ROOT/$1 n=$NEW_ROOT/$1 t xd zs bs big
    local -a XDELTA ZSTD_PF BSDIFF
    # Runs in a child of xargs, where arrays do not arrive: the commands come as exported strings.
    read -ra XDELTA <<<"$XDELTA_S"; read -ra ZSTD_PF <<<"$ZSTD_PF_S"; read -ra BSDIFF <<<"$BSDIFF_S"
    t=$(mktemp -d "$WORK_PAIR/f.XXXXXX")
    "${XDELTA[@]}" "$o" "$n" "$t/xd" 2>"$t/err" || { cat "$t/err" >&2; return 1; }
    big=$(( $(fsize "$o") > $(fsize "$n") ? $(fsize "$o") : $(fsize "$n") ))
    # zstd prints tuning notes on stderr at high levels even with -q; kept only if it fails.
    "${ZSTD_PF[@]}" --long="$(wlog_for "$big")" --patch-from="$o" "$n" -o "$t/zs" 2>"$t/err" || { cat "$t/err" >&2; return 1; }
    if ((big <= BSDIFF_MAX)); then
        "${BSDIFF[@]}" "$o" "$n" "$t/bs" 2>"$t/err" || { cat "$t/err" >&2; return 1; }
        bs=$(fsize "$t/bs")
    else
        bs=-
    fi
    xd=$(fsize "$t/xd"); zs=$(fsize "$t/zs")
    rm -rf "$t"
    printf '%s\t%s\t%s\t%s\t%s\n' "$rel" "$(fsize "$n")" "$xd" "$zs" "$bs"
}

PATCHTOOL_FORMAT2=0
PATCHER_SRC=$REPO; PATCHER_DESC=""
build_patchtool() {
    if [[ -n $PATCHER_REF ]]; then
        # Another branch's Patcher, exported clean into the work folder: nothing is built in any worktree.
        local commit; commit=$(git -C "$REPO" rev-parse --verify --quiet "$PATCHER_REF^{commit}") || die "--patcher-ref '$PATCHER_REF' is not a commit of $REPO"
        PATCHER_SRC=$WORK/patcher-src; mkdir -p "$PATCHER_SRC"
        git -C "$REPO" archive --format=tar "$commit" | tar -x -C "$PATCHER_SRC"
        PATCHER_DESC="commit ${commit:0:7} ($PATCHER_REF)"
    else
        PATCHER_DESC="commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
        [[ -z $(git -C "$REPO" status --porcelain -- src tools/patchtool 2>/dev/null) ]] || PATCHER_DESC+=" with uncommitted changes"
    fi
    say "building tools/patchtool (Release) of $PATCHER_DESC"
    local log; log=$(mktemp)
    if ! dotnet build -c Release "$PATCHER_SRC/tools/patchtool" -nologo -v q >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; die "dotnet build of tools/patchtool failed"
    fi
    rm -f "$log"
    if patchtool build --help 2>/dev/null | grep -q -- '--format'; then PATCHTOOL_FORMAT2=1; fi
    if [[ -z $FORMATS ]]; then
        if ((PATCHTOOL_FORMAT2)); then FORMATS="1 2"; else FORMATS="1"; fi
    fi
    local f
    for f in $FORMATS; do
        [[ $f == 1 || $f == 2 ]] || die "--formats: unknown format '$f' (1 or 2)"
        [[ $f == 1 ]] || ((PATCHTOOL_FORMAT2)) || die "--formats asks for format 2 but this patchtool build has no --format option"
    done
    if [[ -n $LEVEL ]] && ! ((PATCHTOOL_FORMAT2)); then die "--level needs a patchtool build with --format 2"; fi
}

readonly PATCHTOOL_RUN=(dotnet run -c Release --no-build --project tools/patchtool --)
readonly KEY=fixtures/keys/test-signing.key
patchtool() { (cd "$PATCHER_SRC" && "${PATCHTOOL_RUN[@]}" "$@"); }

# Build options per format. A patchtool that knows --format also prints a --json summary of the bytes.
patch_options() { # format
    if ((PATCHTOOL_FORMAT2)); then
        printf '%s\n' --format "$1"
        if [[ $1 == 2 && -n $LEVEL ]]; then printf '%s\n' --level "$LEVEL"; fi
        printf '%s\n' --json
    fi
}

# A patch folder on disk: the manifest (manifest.* but not the signature), the signature (*.sig), the base
# version's manifest beside a format 2 patch that lists only changes (base.msgpack: fetched only by installs whose
# journal does not record the old version, so not part of the whole patch) and the payload (everything else, i.e.
# what is fetched besides the manifest). Prints "payload manifest sig whole base".
patch_bytes() {
    local dir=$1
    (cd "$dir" && find . -type f -printf '%P\t%s\n') | awk -F'\t' '
        $1 ~ /\.sig$/ && $1 !~ /\// { s += $2; next }
        $1 ~ /^manifest\./ { m += $2; next }
        $1 == "base.msgpack" { b += $2; next }
        { p += $2 }
        END { printf "%d %d %d %d %d\n", p, m, s, p + m + s, b }'
}

# The byte summary of `patchtool build --json`: "reused delta delta-content whole whole-content manifest total",
# "-" for a field it lacks; empty when the output is not JSON (a patchtool without --json).
json_summary() {
    jq -r 'with_entries(.key |= ascii_downcase)
        | [.reusedbytes, .deltabytes, .deltacontentbytes, .wholebytes, .wholecontentbytes, .manifestbytes, .totalbytes]
        | map(if . == null then "-" else tostring end) | join(" ")' 2>/dev/null || true
}

RESULTS=""   # file: one line per (pair, format): id, format, the tools line, Patcher bytes, build s, JSON numbers
declare -A PAIR_LABEL=()

# The external tools' numbers for one pair, written to $WORK_PAIR/tools.line as one tab-separated line:
# "counts new-bytes per-file whole tree".
# They depend only on the two trees, the tools' versions and the commands, so they are kept in the cache under
# a hash of exactly those and reused by later runs (--fresh measures again); Patcher's build always runs.
MEASURED_FRESH=(); MEASURED_REUSED=()
measure_tools() { # id old-tree new-tree
    local id=$1 old=$2 new=$3 side key cached
    (cd "$old" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK_PAIR/old.lst"
    (cd "$new" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK_PAIR/new.lst"
    local other; other=$( (cd "$old" && find . ! -type f ! -type d; cd "$new" && find . ! -type f ! -type d) | head -3)
    [[ -z $other ]] || die "$id: only regular files and folders are measured; found e.g. $other"
    # "hash<TAB>path" of every file, in two batches (a process per file is slow on icon sets).
    for side in old new; do
        (cd "${!side}" && tr '\n' '\0' <"$WORK_PAIR/$side.lst" | xargs -0 -r sha256sum | cut -c1-64) \
            | paste - "$WORK_PAIR/$side.lst" >"$WORK_PAIR/$side.sum"
    done
    key=$( { printf '%s\n' "$TOOLS_ID"; cat "$WORK_PAIR/old.sum"; printf -- '--\n'; cat "$WORK_PAIR/new.sum"; } | sha256sum | cut -c1-32)
    cached=$CACHE/measured/$key.tsv
    if ((!FRESH)) && [[ -s $cached ]]; then
        MEASURED_REUSED+=("$id")
        cp "$cached" "$WORK_PAIR/tools.line"
        return
    fi
    MEASURED_FRESH+=("$id")

    LC_ALL=C comm -13 "$WORK_PAIR/old.lst" "$WORK_PAIR/new.lst" >"$WORK_PAIR/added.lst"
    LC_ALL=C comm -23 "$WORK_PAIR/old.lst" "$WORK_PAIR/new.lst" >"$WORK_PAIR/removed.lst"
    # Changed: same path, different content.
    awk -F'\t' 'NR == FNR { h[$2] = $1; next } ($2 in h) && h[$2] != $1 { print $2 }' \
        "$WORK_PAIR/old.sum" "$WORK_PAIR/new.sum" >"$WORK_PAIR/changed.lst"
    # The whole new version, and the whole tree as one delta against the whole old one: in the background,
    # beside the per-file tools, as it is the longest single job.
    (
        tar_tree "$old" "$WORK_PAIR/old.tar"; tar_tree "$new" "$WORK_PAIR/new.tar"
        "${ZSTD_WHOLE[@]}" "$WORK_PAIR/new.tar" -o "$WORK_PAIR/new.tar.zst"
        w=$(wlog_for $(( $(fsize "$WORK_PAIR/old.tar") + $(fsize "$WORK_PAIR/new.tar") )))
        "${ZSTD_PF[@]}" --long="$w" --patch-from="$WORK_PAIR/old.tar" "$WORK_PAIR/new.tar" -o "$WORK_PAIR/tree.zst"
    ) 2>"$WORK_PAIR/whole.err" &
    local whole_job=$!

    # Per-file tools over changed files, JOBS at a time.
    tr '\n' '\0' <"$WORK_PAIR/changed.lst" | xargs -0 -r -P "$JOBS" -I{} bash -c 'measure_changed "$1"' _ {} >"$WORK_PAIR/changed.tsv"
    [[ $(wc -l <"$WORK_PAIR/changed.tsv") == $(wc -l <"$WORK_PAIR/changed.lst") ]] || die "$id: a per-file tool failed (see above)"

    # Added files: each compressed alone at zstd -19, the same cost for every per-file method.
    local added_z=0
    if [[ -s $WORK_PAIR/added.lst ]]; then
        (cd "$new" && "${ZSTD_WHOLE[@]}" --filelist="$WORK_PAIR/added.lst" --output-dir-mirror="$WORK_PAIR/added" 2>"$WORK_PAIR/err") \
            || { cat "$WORK_PAIR/err" >&2; die "$id: zstd of added files failed"; }
        added_z=$(find "$WORK_PAIR/added" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    fi

    wait "$whole_job" || { cat "$WORK_PAIR/whole.err" >&2; die "$id: tar or zstd of the whole tree failed"; }
    local whole_z tree_z new_bytes
    whole_z=$(fsize "$WORK_PAIR/new.tar.zst"); tree_z=$(fsize "$WORK_PAIR/tree.zst")
    new_bytes=$( (cd "$new" && find . -type f -printf '%s\n') | awk '{ s += $1 } END { print s + 0 }')
    rm -f "$WORK_PAIR"/*.tar "$WORK_PAIR"/*.zst

    local per_file
    per_file=$(awk -F'\t' -v added="$added_z" '
        function min(a, b) { return b == "-" || a + 0 <= b + 0 ? a : b }
        { xd += $3; zs += $4; bs += ($5 == "-" ? min($3, $4) : $5); if ($5 == "-") skipped++
          b2 += min($3, $4); b3 += min(min($3, $4), $5) }
        END { printf "%d %d %d %d %d %d", xd + added, zs + added, bs + added, b2 + added, b3 + added, skipped }' "$WORK_PAIR/changed.tsv")

    local counts
    counts="$(wc -l <"$WORK_PAIR/old.lst") $(wc -l <"$WORK_PAIR/new.lst") $(wc -l <"$WORK_PAIR/changed.lst") $(wc -l <"$WORK_PAIR/added.lst") $(wc -l <"$WORK_PAIR/removed.lst")"
    counts=$(tr -s ' ' <<<"$counts")

    printf '%s\t%s\t%s\t%s\t%s\n' "$counts" "$new_bytes" "$per_file" "$whole_z" "$tree_z" >"$WORK_PAIR/tools.line"
    mkdir -p "$CACHE/measured"
    cp "$WORK_PAIR/tools.line" "$cached.tmp"
    mv "$cached.tmp" "$cached"
}

# Applies a format 2 patch to a copy of the old tree holding a player's file, with each commit strategy, as an
# install Patcher did not install would (the old version's manifest comes from base.msgpack beside the patch), and
# checks the result is the new tree exactly (paths, bytes, executable bits) with the player's file kept.
readonly TRUST=fixtures/keys/test-signing.pub
readonly PLAYER_FILE=realpairs-player-save.dat
declare -a ROUND_TRIPS=()
round_trip() { # id patch old-tree new-tree
    local id=$1 patch=$2 old=$3 new=$4 strategy inst listing
    [[ ! -e $new/$PLAYER_FILE ]] || die "$id: the new tree already has $PLAYER_FILE"
    for strategy in swap layered; do
        inst=$WORK_PAIR/install-$strategy/game
        mkdir -p "${inst%/*}"; cp -a "$old" "$inst"
        printf 'saved game of %s\n' "$id" >"$inst/$PLAYER_FILE"
        patchtool apply --patch "$patch" --install-dir "$inst" --trust "$TRUST" --strategy "$strategy" \
            >"$WORK_PAIR/apply-$strategy.out" 2>&1 \
            || { cat "$WORK_PAIR/apply-$strategy.out" >&2; die "$id: patchtool apply --strategy $strategy failed"; }
        [[ $(<"$inst/$PLAYER_FILE") == "saved game of $id" ]] || die "$id ($strategy): the player's file was not kept"
        rm "$inst/$PLAYER_FILE"
        for listing in "find . -type f -printf '%P\n'" "find . -type f -perm -u+x -printf '%P\n'" "find . -type d -printf '%P\n'"; do
            cmp -s <(cd "$inst" && eval "$listing" | LC_ALL=C sort) <(cd "$new" && eval "$listing" | LC_ALL=C sort) \
                || die "$id ($strategy): the installed tree's entries differ from the new version ($listing)"
        done
        diff -r --no-dereference -q "$inst" "$new" >/dev/null || die "$id ($strategy): the installed tree's bytes differ from the new version"
        rm -rf "${inst%/*}"
    done
    ROUND_TRIPS+=("$id")
}

measure_pair() { # id old-tree new-tree label
    local id=$1 old=$2 new=$3 label=$4 t0 t1 fmt out opts nums tools
    WORK_PAIR=$WORK/$id; mkdir -p "$WORK_PAIR"
    export OLD_ROOT=$old NEW_ROOT=$new WORK_PAIR
    PAIR_LABEL[$id]=$label
    say "$id: $label"
    measure_tools "$id" "$old" "$new"
    tools=$(<"$WORK_PAIR/tools.line")
    for fmt in $FORMATS; do
        out=$WORK_PAIR/patch-f$fmt
        mapfile -t opts < <(patch_options "$fmt")
        t0=$(date +%s.%N)
        patchtool build --from "$old" --to "$new" --out "$out" --key "$KEY" --product realpairs \
            --from-version 1 --version 2 "${opts[@]}" >"$WORK_PAIR/build-f$fmt.out" 2>"$WORK_PAIR/err" \
            || { cat "$WORK_PAIR/err" "$WORK_PAIR/build-f$fmt.out" >&2; die "$id: patchtool build (format $fmt) failed"; }
        t1=$(date +%s.%N)
        nums=$(json_summary <"$WORK_PAIR/build-f$fmt.out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$fmt" "$tools" "$(patch_bytes "$out")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$nums" >>"$RESULTS"
        [[ $fmt != 2 ]] || round_trip "$id" "$out" "$old" "$new"
        rm -rf "$out"
    done
    rm -rf "$WORK_PAIR"
}

# A full package (no --from) of a tree, for the "whole of D" row: prints "payload manifest sig whole".
full_package_bytes() { # tree
    local out=$WORK/full-package fmt=${FORMATS##* } opts
    mapfile -t opts < <(patch_options "$fmt")
    patchtool build --to "$1" --out "$out" --key "$KEY" --product realpairs --version 2 "${opts[@]}" >"$WORK/full.out" 2>"$WORK/err" \
        || { cat "$WORK/err" "$WORK/full.out" >&2; die "patchtool build of a full package failed"; }
    patch_bytes "$out"
    rm -rf "$out"
}

# ---------------------------------------------------------------------------------------------- report
group() { # 1234567 -> 1,234,567
    sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta' <<<"$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

machine_table() {
    local cpu mem kernel
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
    kernel=$(uname -sr)
    printf '| machine | |\n|---|---|\n'
    printf '| CPU | %s × %s |\n' "$(nproc)" "${cpu:-unknown}"
    printf '| memory | %s |\n' "${mem:-unknown}"
    printf '| kernel | %s%s |\n' "$kernel" "$( [[ -r /etc/os-release ]] && . /etc/os-release && printf ' (%s)' "$PRETTY_NAME")"
    printf '| tools | %s; %s; bsdiff %s; %s; npm %s; .NET SDK %s |\n' \
        "$(zstd --version | sed 's/^\*\*\* //; s/, by.*//')" "$(xdelta3 -V 2>&1 | head -1 | sed 's/, Copyright.*//')" \
        "$(dpkg-query -W -f '${Version}' bsdiff 2>/dev/null || echo '?')" "$(tar --version | head -1)" "$(npm --version)" "$(dotnet --version)"
    printf '| load average (1, 5, 15 min) | %s at the start, %s at the end (other work shares the CPUs: times are wall times) |\n' \
        "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
    printf '| Patcher | %s, formats built: %s%s |\n' "$PATCHER_DESC" "$FORMATS" "$( [[ -n $LEVEL ]] && printf ' (format 2 at --level %s)' "$LEVEL")"
}

report() { # results-file mode-line chain-lines
    local res=$1 id fmt counts nb pf wz tz pb secs nums
    local o n c a r xd zs bs b2 b3 skipped pay man sig whole
    printf '| pair | what | files old → new (changed, added, removed) | new version | xdelta3 -9 | zstd -19 --patch-from | bsdiff | best per file (xdelta3, zstd) | best per file (all three) | whole tree, zstd --patch-from | new version, tar at zstd -19 |\n'
    printf '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n'
    local seen=" "
    while IFS=$'\t' read -r id fmt counts nb pf wz tz pb secs nums; do
        [[ $seen == *" $id "* ]] && continue; seen+="$id "
        read -r o n c a r <<<"$counts"; read -r xd zs bs b2 b3 skipped <<<"$pf"
        printf '| %s | %s | %s → %s (%s, %s, %s) | %s | %s | %s | %s%s | %s | %s | %s | %s |\n' "$id" "${PAIR_LABEL[$id]}" \
            "$(group "$o")" "$(group "$n")" "$(group "$c")" "$(group "$a")" "$(group "$r")" "$(group "$nb")" \
            "$(group "$xd")" "$(group "$zs")" "$(group "$bs")" "$( ((skipped)) && printf ' (%s files too large, best of the others)' "$skipped")" \
            "$(group "$b2")" "$(group "$b3")" "$(group "$tz")" "$(group "$wz")"
    done <"$res"
    printf '\n| pair | format | Patcher payload | manifest | signature | whole patch | base.msgpack (optional) | build s | payload / best per file (≤ 1.5) | payload / bsdiff | whole / tar zstd -19 (≤ 1) | targets |\n'
    printf '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n'
    while IFS=$'\t' read -r id fmt counts nb pf wz tz pb secs nums; do
        read -r xd zs bs b2 b3 skipped <<<"$pf"; read -r pay man sig whole base <<<"$pb"
        local r1 r2 r3 verdict
        r1=$(ratio "$pay" "$b2"); r2=$(ratio "$pay" "$bs"); r3=$(ratio "$whole" "$wz")
        verdict=$(awk -v a="$r1" -v b="$r3" 'BEGIN { x = (a + 0 <= 1.5) ? "payload met" : "payload missed"; y = (b + 0 <= 1) ? "whole met" : "whole missed"; print x ", " y }')
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$id" "$fmt" "$(group "$pay")" "$(group "$man")" "$(group "$sig")" \
            "$(group "$whole")" "$( ((${base:-0})) && group "$base" || printf '–')" "$secs" "$r1" "$r2" "$r3" "$verdict"
    done <"$res"
    if ((PATCHTOOL_FORMAT2)); then
        printf '\nWhat each patch is made of, as `patchtool build --json` reports it (bytes; content bytes in parentheses):\n\n'
        printf '| pair | format | reused from the old version (not downloaded) | shipped as deltas | shipped whole | manifest | total |\n'
        printf '|---|--:|--:|--:|--:|--:|--:|\n'
        local ru de dc wh wc ma to
        while IFS=$'\t' read -r id fmt counts nb pf wz tz pb secs nums; do
            [[ -n $nums ]] || { printf '| %s | %s | (no JSON summary) | | | | |\n' "$id" "$fmt"; continue; }
            read -r ru de dc wh wc ma to <<<"$nums"
            printf '| %s | %s | %s | %s (%s) | %s (%s) | %s | %s |\n' "$id" "$fmt" "$(group "$ru")" "$(group "$de")" "$(group "$dc")" \
                "$(group "$wh")" "$(group "$wc")" "$(group "$ma")" "$(group "$to")"
        done <"$res"
    fi
}

# ------------------------------------------------------------------------------------------------- main
need_tools
mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/patcher-realpairs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results.tsv; : >"$RESULTS"
export WORK
export -f measure_changed fsize wlog_for
export XDELTA_S="${XDELTA[*]}" ZSTD_PF_S="${ZSTD_PF[*]}" BSDIFF_S="${BSDIFF[*]}" BSDIFF_MAX

TOOLS_ID="recipe $MEASURE_RECIPE; $(zstd --version); $(xdelta3 -V 2>&1 | head -1); bsdiff $(dpkg-query -W -f '${Version}' bsdiff 2>/dev/null || command -v bsdiff); $(tar --version | head -1)"
TOOLS_ID+="; ${XDELTA[*]}; ${ZSTD_PF[*]}; ${BSDIFF[*]}; ${ZSTD_WHOLE[*]}; $BSDIFF_MAX"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
START=$(date +%s)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
build_patchtool

for p in "${PAIRS[@]}"; do
    IFS='|' read -r id kind pkg old new what <<<"$p"
    selected "$id" || continue
    case $kind in
        npm)
            o=$(fetch_tree "$pkg" "$old"); n=$(fetch_tree "$pkg" "$new")
            measure_pair "$id" "$o" "$n" "\`$pkg\` $old → $new: $what" ;;
        gen)
            base=$(fetch_tree "$pkg" "$old")
            trees=$(make_moved_case "$new" "$base"); IFS=$'\t' read -r o n <<<"$trees"
            measure_pair "$id" "$o" "$n" "from \`$pkg\` $old: $what" ;;
    esac
done

CHAIN_DONE=0
if selected chain; then
    say "chain: $CHAIN_PACKAGE ${CHAIN[*]}"
    declare -a T=()
    for v in "${CHAIN[@]}"; do T+=("$(fetch_tree "$CHAIN_PACKAGE" "$v")"); done
    measure_pair chain-AD "${T[0]}" "${T[3]}" "\`$CHAIN_PACKAGE\` ${CHAIN[0]} → ${CHAIN[3]} (three versions behind)"
    measure_pair chain-AB "${T[0]}" "${T[1]}" "\`$CHAIN_PACKAGE\` ${CHAIN[0]} → ${CHAIN[1]}"
    measure_pair chain-BC "${T[1]}" "${T[2]}" "\`$CHAIN_PACKAGE\` ${CHAIN[1]} → ${CHAIN[2]}"
    measure_pair chain-CD "${T[2]}" "${T[3]}" "\`$CHAIN_PACKAGE\` ${CHAIN[2]} → ${CHAIN[3]}"
    full=$(full_package_bytes "${T[3]}"); read -r FULL_PAY _ _ FULL_WHOLE _ <<<"$full"
    CHAIN_DONE=1
fi
ELAPSED=$(( $(date +%s) - START ))

chain_report() {
    local fmt=${FORMATS##* } b2=() bs=() pay=() whole=() wz="" id i f counts nb pf w tz pb secs nums x3 x4 p wh
    for id in chain-AD chain-AB chain-BC chain-CD; do
        while IFS=$'\t' read -r i f counts nb pf w tz pb secs nums; do
            [[ $i == "$id" && $f == "$fmt" ]] || continue
            read -r _ _ x3 x4 _ _ <<<"$pf"; read -r p _ _ wh _ <<<"$pb"
            b2+=("$x4"); bs+=("$x3"); pay+=("$p"); whole+=("$wh")
            [[ $id == chain-AD ]] && wz=$w
        done <"$RESULTS"
    done
    local sb2=$((b2[1] + b2[2] + b2[3])) sbs=$((bs[1] + bs[2] + bs[3])) spay=$((pay[1] + pay[2] + pay[3])) swh=$((whole[1] + whole[2] + whole[3]))
    printf '| %s, format %s | best per file (xdelta3, zstd) | bsdiff | Patcher payload | Patcher whole patch |\n|---|--:|--:|--:|--:|\n' "\`$CHAIN_PACKAGE\`" "$fmt"
    printf '| A→D: %s → %s in one patch | %s | %s | %s | %s |\n' "${CHAIN[0]}" "${CHAIN[3]}" "$(group "${b2[0]}")" "$(group "${bs[0]}")" "$(group "${pay[0]}")" "$(group "${whole[0]}")"
    printf '| A→B + B→C + C→D: three patches in a row | %s | %s | %s | %s |\n' "$(group "$sb2")" "$(group "$sbs")" "$(group "$spay")" "$(group "$swh")"
    printf '| the whole of D (%s): tar at zstd -19; Patcher full package | %s | | %s | %s |\n' "${CHAIN[3]}" "$(group "$wz")" "$(group "$FULL_PAY")" "$(group "$FULL_WHOLE")"
    printf '\nA→D / sum of the three steps: Patcher payload %s, best per file %s. A→D / whole of D: Patcher whole patch %s.\n' \
        "$(ratio "${pay[0]}" "$spay")" "$(ratio "${b2[0]}" "$sb2")" "$(ratio "${whole[0]}" "$FULL_WHOLE")"
}

commands_section() {
    local w='W'
    cat <<EOF
Commands (per pair; OLD and NEW are the unpacked trees, FILE a path in both; W is the zstd window log, 27 or
whatever covers the input):

\`\`\`
npm pack NAME@VERSION --json --silent                 # into the cache, then: tar -xzf TGZ --strip-components=1
${XDELTA[*]} OLD/FILE NEW/FILE OUT                # each changed file
${ZSTD_PF[*]} --long=$w --patch-from=OLD/FILE NEW/FILE -o OUT   # each changed file
${BSDIFF[*]} OLD/FILE NEW/FILE OUT                               # each changed file up to $((BSDIFF_MAX >> 20)) MiB
(cd NEW && ${ZSTD_WHOLE[*]} --filelist=ADDED --output-dir-mirror=OUT)   # added files, each alone
tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -C NEW -cf new.tar .   # likewise old.tar
${ZSTD_WHOLE[*]} new.tar -o OUT                          # the new version whole
${ZSTD_PF[*]} --long=$w --patch-from=old.tar new.tar -o OUT     # the whole tree as one delta
${PATCHTOOL_RUN[*]} build --from OLD --to NEW --out PATCH --key $KEY --product realpairs --from-version 1 --version 2 [--format F] [--level N] [--json]
\`\`\`

Bytes are file sizes on disk (\`stat -c %s\`). Patcher's payload is every file of the patch folder but the
manifest (\`manifest.*\`), the signature (\`*.sig\`) and the old version's manifest beside a format 2 patch that lists
only changes (\`base.msgpack\`, fetched only by an install whose journal does not record the old version; shown in its
own column); the whole patch is payload, manifest and signature. Best per file takes, for
each changed file, the smaller of xdelta3 and zstd (the target's reference; "all three" adds bsdiff); added files
count at zstd -19 in every per-file column; removed files cost nothing there. Patches are signed with the TEST ONLY
key, so the signature's bytes are those of a real signature.
EOF
}

{
    printf '### %s run, %s (%s s wall)\n\n' "${MODE^}" "$STARTED" "$ELAPSED"
    printf 'Command: `bash tools/realpairs/run.sh%s`\n\n' "$ARGS_GIVEN"
    machine_table
    printf '\n'
    report "$RESULTS"
    if ((CHAIN_DONE)); then printf '\nThree versions behind:\n\n'; chain_report; fi
    if ((${#ROUND_TRIPS[@]})); then
        printf '\nRound trip: each format 2 patch above was applied by `patchtool apply` to a copy of its old tree holding a player'"'"'s file, with `--strategy swap` and with `--strategy layered`; every install ended as the new tree exactly (paths, bytes, executable bits, directories) with the player'"'"'s file kept: %s pairs, %s applies.\n' \
            "${#ROUND_TRIPS[@]}" "$((2 * ${#ROUND_TRIPS[@]}))"
    fi
    printf '\nExternal tools measured in this run: %s. Reused from the cache (same trees, tool versions and commands): %s.\n' \
        "${MEASURED_FRESH[*]:-none}" "${MEASURED_REUSED[*]:-none}"
    # bash's times (not in a pipeline, whose subshell would count nothing): the shell's own user and system
    # time, then its children's (every tool and build, waited for).
    times >"$WORK/times"
    awk 'NR == 2 { printf "CPU time of the run (every tool and build): %s user, %s system.\n", $1, $2 }' "$WORK/times"
    printf '\n'
    commands_section
} >"$WORK/report.md"

cat "$WORK/report.md"
[[ -z $OUT ]] || cp "$WORK/report.md" "$OUT"
if ((WRITE)); then
    awk -v b="$REGION_BEGIN" -v e="$REGION_END" -v f="$WORK/report.md" '
        $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
        $0 == e { skip = 0 }
        !skip' "$DOC" >"$WORK/doc.md"
    cp "$WORK/doc.md" "$DOC"
    say "wrote the $MODE region of $DOC"
fi
say "done in ${ELAPSED} s"
