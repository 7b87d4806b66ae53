#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Per-patch checks, in the spirit of netdev's CI: for each patch of the
# series, in order on top of the base, in build/linux:
#   build   the test kernel builds incrementally at this patch (bisectable)
#   W=1     no new compiler warnings with W=1 in the files the patch touches
#   sparse  no new sparse warnings (C=2) in those files
#   kdoc    no new kernel-doc warnings in those files
#   rst     no new docutils warnings or errors in the .rst files the patch
#           touches (Sphinx-only roles and directives aside: Sphinx is not
#           in Debian bookworm's reach here)
#   cpatch  scripts/checkpatch.pl --strict --no-signoff is clean (the
#           "does MAINTAINERS need updating" warning passes when every added
#           file already has a maintainer)
#   cocci   coccinelle's report-mode scripts find nothing on the lines the
#           patch adds
#   vendor  for a patch that touches mlx5, nfp or ice: the driver's objects
#           build as a module with its TC options (selftests/vendor.config,
#           in build/kout-vendor); W=1 and sparse of its files come from
#           there. Objects only: linking the module would need a vmlinux of
#           that config too (~15 min more).
#   fixes   Fixes: tags are well formed; "ok" when KHIST names a tree with
#           upstream history in which they resolve to a commit with that
#           subject, "fmt" (well formed, not resolved: not red) without
#           KHIST, as the pinned base has no history. checkpatch's own
#           commit-id check needs that history too: it is left to this
#           column.
# and lists where get_maintainer.pl would send it. Prints a table and fails
# on any red cell. "New" means not present at the parent commit.
# clang: the base needs clang >= 17 and bookworm has 16 at most: not run.
#
#   scripts/check.sh              every patch of patches/series
#   scripts/check.sh 3 5-7        only those patches (1-based)
#   NO_COCCI=1 scripts/check.sh   skip coccinelle (slow)
#   BASE_REF=<rev> KTREE=... KOUT=...  the commits after <rev> of another
#                                 tree (scripts/send.sh --check: one posting)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_cmd sparse sparse
# Debian's python3 (with python3-ply for checkpatch's spdxcheck.py and
# python3-docutils), not whatever python3 comes first in PATH.
export PATH=/usr/bin:$PATH
# Without spatch the cocci column would pass on nothing.
[ -n "${NO_COCCI:-}" ] || need_cmd spatch coccinelle
need_cmd git git
/usr/bin/python3 -c 'import docutils' 2>/dev/null ||
	die "docutils missing: install the Debian package 'python3-docutils'"
# checkpatch's SPDX check of new files (spdxcheck.py) needs GitPython:
# without it, it prints a traceback and checks nothing.
/usr/bin/python3 -c 'import git' 2>/dev/null ||
	die "GitPython missing: install the Debian package 'python3-git'"
is_ktree "$KTREE" || die "$KTREE is not a kernel tree: run scripts/mktree.sh"
BASE_REF=${BASE_REF:-base}
git -C "$KTREE" rev-parse -q --verify "$BASE_REF" >/dev/null || die "$KTREE has no $BASE_REF"
[ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] ||
	die "$KTREE has uncommitted changes: commit or stash them first"
[ -f "$KOUT/.config" ] || die "no configured kernel in $KOUT: run scripts/build.sh"

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache} CCACHE_BASEDIR=$BUILD
head_ref=$(git -C "$KTREE" symbolic-ref -q --short HEAD || git -C "$KTREE" rev-parse HEAD)
mapfile -t commits < <(git -C "$KTREE" rev-list --reverse "$BASE_REF"..HEAD)
names=()
[ "$BASE_REF" != base ] ||
	mapfile -t names < <(grep -v 'cover-letter' "$TOP/patches/series" 2>/dev/null || true)
[ ${#commits[@]} -gt 0 ] || { info "no patches on top of $BASE_REF"; exit 0; }

want=()
if [ $# -eq 0 ]; then
	want=($(seq 1 ${#commits[@]}))
else
	for a in "$@"; do
		case "$a" in
		*-*) want+=($(seq "${a%-*}" "${a#*-}")) ;;
		*) want+=("$a") ;;
		esac
	done
fi

log=$BUILD/check
rm -rf "$log" && mkdir -p "$log"
kmake() { make -C "$KTREE" O="$KOUT" ARCH=x86_64 CC="ccache gcc" "$@"; }
KOUT_VENDOR=${KOUT_VENDOR:-$BUILD/kout-vendor}
vmake() { make -C "$KTREE" O="$KOUT_VENDOR" ARCH=x86_64 CC="ccache gcc" "$@"; }
SPARSE="sparse -D__typeof_unqual__=__typeof__"

restore() {
	git -C "$KTREE" checkout -q "$head_ref" 2>/dev/null || true
}
trap restore EXIT

# The driver directory a vendor file belongs to, if any.
vendor_dir() {
	case "$1" in
	drivers/net/ethernet/mellanox/mlx5/core/*) echo drivers/net/ethernet/mellanox/mlx5/core/ ;;
	drivers/net/ethernet/netronome/nfp/*) echo drivers/net/ethernet/netronome/nfp/ ;;
	drivers/net/ethernet/intel/ice/*) echo drivers/net/ethernet/intel/ice/ ;;
	esac
}

# Configure build/kout-vendor for the checked-out commit: tinyconfig +
# vendor.config, prepared for building module objects. Run at every vendor
# patch: a patch may add a symbol the fragment asks for (a KUnit option);
# kbuild then rebuilds only what depends on it.
vendor_prepare() {
	local frag=$TOP/selftests/vendor.config l
	mkdir -p "$KOUT_VENDOR"
	[ -f "$KOUT_VENDOR/.config" ] || vmake -s tinyconfig >/dev/null
	(cd "$KTREE" && scripts/kconfig/merge_config.sh -m -O "$KOUT_VENDOR" \
		"$KOUT_VENDOR/.config" "$frag" >/dev/null)
	vmake -s olddefconfig >/dev/null
	while IFS= read -r l; do
		case "$l" in CONFIG_*=[ym]) ;; *) continue ;; esac
		grep -qx "$l" "$KOUT_VENDOR/.config" ||
			echo "    (vendor.config: $l not available at this patch)"
	done < "$frag"
	vmake -j"$(nproc)" modules_prepare > "$KOUT_VENDOR/prepare.log" 2>&1 ||
		die "modules_prepare failed: $KOUT_VENDOR/prepare.log"
}

# Warnings of the objects of @files, normalised (no line numbers), sorted.
# Vendor driver files are compiled in build/kout-vendor.
# $1: output file; rest: source files.
warnings_for() {
	local out=$1; shift
	local objs=() vobjs=() f
	for f in "$@"; do
		[ -f "$KTREE/$f" ] || continue
		if [ -n "$(vendor_dir "$f")" ]; then
			vobjs+=("${f%.c}.o")
		else
			objs+=("${f%.c}.o")
		fi
	done
	: > "$out.raw"
	if [ ${#objs[@]} -gt 0 ]; then
		kmake -k W=1 C=2 CHECK="$SPARSE" "${objs[@]}" > "$out.raw" 2>&1 || true
	fi
	if [ ${#vobjs[@]} -gt 0 ]; then
		vmake -k W=1 C=2 CHECK="$SPARSE" "${vobjs[@]}" >> "$out.raw" 2>&1 || true
	fi
	{ grep -E '(warning|error):' "$out.raw" || true; } |
		sed -E 's#^.*/linux/##; s#:[0-9]+:[0-9]+:#:#; s#:[0-9]+:#:#' | sort -u > "$out"
}

# The sorted output of checker $2 for each of the files that exist.
# $1: output file; $2: function taking one file; rest: files.
each_file() {
	local out=$1 fn=$2 f
	shift 2
	: > "$out"
	for f in "$@"; do
		[ -f "$KTREE/$f" ] && "$fn" "$f" >> "$out"
	done
	sort -u -o "$out" "$out"
}

kdoc_one() {
	# Without line numbers ("file.c:12: warning", "file.c:12 No
	# description"), so that a warning the patch only moved is not new.
	(cd "$KTREE" && scripts/kernel-doc -none -Wall "$1" 2>&1) |
		sed -E 's#:[0-9]+(:| |$)#:\1#' || true
}
kdoc_for() { each_file "$1" kdoc_one "${@:2}"; }

# docutils' warnings for an .rst file, without Sphinx's own roles and
# directives (unknown to plain docutils) and line numbers.
rst_one() {
	/usr/bin/python3 - "$KTREE/$1" "$1" <<'PY' || true
import io, re, sys
import docutils.core
path, name = sys.argv[1:]
err = io.StringIO()
docutils.core.publish_doctree(open(path).read(), source_path=name,
    settings_overrides={'report_level': 2, 'halt_level': 5,
                        'warning_stream': err})
skip = re.compile(r'Unknown (interpreted text role|directive type)|'
                  r'No (role|directive) entry|Trying ".*" as canonical')
for line in err.getvalue().splitlines():
    if line.strip() and not skip.search(line) and line.startswith(name):
        print(re.sub(r':[0-9]+:', ':', line, count=1))
PY
}
rst_for() { each_file "$1" rst_one "${@:2}"; }

# Coccinelle findings on the lines commit $2 adds to its C files. Only
# added lines count, so the parent need not be scanned (spatch is slow).
cocci_for() {
	local out=$1 c=$2; shift 2
	local f
	: > "$out"
	for f in "$@"; do
		[ -f "$KTREE/$f" ] || continue
		git -C "$KTREE" diff -U0 "$c~1" "$c" -- "$f" |
			sed -nE 's/^@@ [^+]*\+([0-9]+)(,([0-9]+))? @@.*/\1 \3/p' > "$out.ranges"
		(cd "$KTREE" && grep -l 'virtual report' scripts/coccinelle/*/*.cocci) |
			xargs -P "$(nproc)" -I{} sh -c "cd '$KTREE' && timeout 120 spatch -D report \
				--very-quiet --no-show-diff --no-includes --include-headers \
				--cocci-file {} '$f' 2>/dev/null" |
			awk -v f="$f" 'NR == FNR { lo[NR] = $1; hi[NR] = $1 + ($2 == "" ? 1 : $2) - 1; n = NR; next }
				index($0, f ":") == 1 { split($0, a, ":"); for (i = 1; i <= n; i++)
					if (a[2] >= lo[i] && a[2] <= hi[i]) { print; break } }' \
				"$out.ranges" - >> "$out" || true
	done
	sort -u -o "$out" "$out"
}

new_lines() { comm -13 "$1" "$2"; }

red=0
printf '%-4s %-56s %-6s %-5s %-6s %-5s %-4s %-6s %-5s %-6s %-6s %s\n' \
	"#" patch build W=1 sparse kdoc rst cpatch cocci vendor fixes "get_maintainer (lists)"
for i in "${want[@]}"; do
	c=${commits[$((i - 1))]:-}
	[ -n "$c" ] || die "there is no patch $i"
	name=${names[$((i - 1))]:-$(git -C "$KTREE" log -1 --format=%s "$c")}
	d=$log/$i
	mkdir -p "$d"
	mapfile -t files < <(git -C "$KTREE" diff --name-only "$c~1" "$c")
	csrc=() hdrs=() vdirs=() rsts=()
	for f in "${files[@]}"; do
		v=$(vendor_dir "$f")
		[ -z "$v" ] || [[ " ${vdirs[*]} " == *" $v "* ]] || vdirs+=("$v")
		case "$f" in
		Documentation/*.rst) rsts+=("$f") ;;
		tools/*|Documentation/*|scripts/*) ;;
		*.c) csrc+=("$f") ;;
		*.h) hdrs+=("$f") ;;
		esac
	done

	# The parent first: what was already there is not this patch's.
	git -C "$KTREE" checkout -q "$c~1"
	[ ${#vdirs[@]} -eq 0 ] || vendor_prepare > "$d/vendor-config.parent"
	warnings_for "$d/warn.parent" "${csrc[@]}"
	kdoc_for "$d/kdoc.parent" "${csrc[@]}" "${hdrs[@]}"
	rst_for "$d/rst.parent" "${rsts[@]}"

	git -C "$KTREE" checkout -q "$c"
	[ ${#vdirs[@]} -eq 0 ] || vendor_prepare > "$d/vendor-config"
	if kmake -j"$(nproc)" > "$d/build.log" 2>&1; then build=ok; else build=FAIL; fi
	warnings_for "$d/warn" "${csrc[@]}"
	new_lines "$d/warn.parent" "$d/warn" > "$d/warn.new"
	if grep -q '\[-W' "$d/warn.new"; then w1=FAIL; else w1=ok; fi
	if grep -v '\[-W' "$d/warn.new" | grep -q .; then sp=FAIL; else sp=ok; fi
	[ ${#csrc[@]} -gt 0 ] || { w1=-; sp=-; }

	vd=-
	if [ ${#vdirs[@]} -gt 0 ]; then
		if vmake -j"$(nproc)" W=1 "${vdirs[@]}" > "$d/vendor.log" 2>&1; then
			vd=ok
		else
			vd=FAIL
		fi
	fi

	kdoc_for "$d/kdoc" "${csrc[@]}" "${hdrs[@]}"
	new_lines "$d/kdoc.parent" "$d/kdoc" > "$d/kdoc.new"
	if [ -s "$d/kdoc.new" ]; then kd=FAIL; else kd=ok; fi
	[ $((${#csrc[@]} + ${#hdrs[@]})) -gt 0 ] || kd=-

	rst_for "$d/rst" "${rsts[@]}"
	new_lines "$d/rst.parent" "$d/rst" > "$d/rst.new"
	if [ -s "$d/rst.new" ]; then rs=FAIL; else rs=ok; fi
	[ ${#rsts[@]} -gt 0 ] || rs=-

	# The TRACE_EVENT() layout every trace header uses (TP_STRUCT__entry(
	# ending a line, TP_PROTO() indented by a tab) is not checkpatch's
	# idea of alignment: those two checks do not count in trace headers.
	(cd "$KTREE" && scripts/checkpatch.pl --strict --no-signoff --color=never \
		--ignore UNKNOWN_COMMIT_ID -q -g "$c") 2>&1 |
		awk -v RS= -v ORS='\n\n' '!(/(^|\n)CHECK: (Lines should not end with a .\(.|Alignment should match open parenthesis)/ &&
			/FILE: include\/trace\/events\//)' > "$d/checkpatch" || true
	cp=ok
	if grep -qE '^(ERROR|WARNING|CHECK):' "$d/checkpatch"; then
		cp=FAIL
		if ! grep -E '^(ERROR|WARNING|CHECK):' "$d/checkpatch" |
		     grep -qv 'does MAINTAINERS need updating'; then
			cp=ok
			for f in $(git -C "$KTREE" diff --name-only --diff-filter=A "$c~1" "$c"); do
				(cd "$KTREE" && scripts/get_maintainer.pl --no-git \
					--no-git-fallback -f "$f") | grep -q '(maintainer:' || cp=FAIL
			done
		fi
	fi

	if [ ${#csrc[@]} -gt 0 ] && [ -z "${NO_COCCI:-}" ]; then
		cocci_for "$d/cocci.new" "$c" "${csrc[@]}"
		if [ -s "$d/cocci.new" ]; then cc=FAIL; else cc=ok; fi
	else
		cc=-
	fi

	fx=-
	while read -r line; do
		if [[ "$line" =~ ^Fixes:\ [0-9a-f]{12,40}\ \(\"(.+)\"\)$ ]]; then
			subj=${BASH_REMATCH[1]}
			sha=${line#Fixes: }; sha=${sha%% *}
			if [ -z "${KHIST:-}" ]; then
				[ "$fx" = FAIL ] || fx=fmt
			elif [ "$(git -C "$KHIST" log -1 --format=%s "$sha" 2>/dev/null)" = "$subj" ]; then
				[ "$fx" = FAIL ] || fx=ok
			else
				fx=FAIL; echo "$line: no such commit in $KHIST" >> "$d/fixes"
			fi
		else
			fx=FAIL; echo "malformed: $line" >> "$d/fixes"
		fi
	done < <(git -C "$KTREE" log -1 --format=%B "$c" | grep '^Fixes:' || true)

	lists=$(git -C "$KTREE" format-patch -1 --stdout "$c" |
		(cd "$KTREE" && scripts/get_maintainer.pl --no-git --no-git-fallback \
			--no-rolestats) 2>/dev/null | tee "$d/get_maintainer" |
		grep -oE '[^ <]+@vger\.kernel\.org|netfilter-devel@[^ >]+' | sort -u | paste -sd, -)

	printf '%-4s %-56.56s %-6s %-5s %-6s %-5s %-4s %-6s %-5s %-6s %-6s %s\n' \
		"$i" "$name" "$build" "$w1" "$sp" "$kd" "$rs" "$cp" "$cc" "$vd" "$fx" "${lists:--}"
	for cell in "$build" "$w1" "$sp" "$kd" "$rs" "$cp" "$cc" "$vd" "$fx"; do
		[ "$cell" = FAIL ] && red=1
	done
	if [ "$w1" = FAIL ] || [ "$sp" = FAIL ]; then
		head -n 20 "$d/warn.new" | sed 's/^/    new warning: /'
	fi
	[ "$kd" = FAIL ] && head -n 20 "$d/kdoc.new" | sed 's/^/    kernel-doc: /'
	[ "$rs" = FAIL ] && head -n 20 "$d/rst.new" | sed 's/^/    rst: /'
	[ "$cp" = FAIL ] && grep -E -A3 '^(ERROR|WARNING|CHECK):' "$d/checkpatch" |
		head -n 30 | sed 's/^/    /'
	[ "$cc" = FAIL ] && head -n 20 "$d/cocci.new" | sed 's/^/    coccinelle: /'
	[ "$fx" = FAIL ] && sed 's/^/    fixes: /' "$d/fixes"
	[ "$build" = FAIL ] && tail -n 20 "$d/build.log" | sed 's/^/    build: /'
	[ "$vd" = FAIL ] && grep -E 'error|Error' "$d/vendor.log" | head -n 20 |
		sed 's/^/    vendor: /'
	true
done

restore
trap - EXIT
info "rebuilding $KOUT at $head_ref"
# build.sh, not kmake: older commits dropped symbols their Kconfig lacks.
"$TOP/scripts/build.sh" > "$log/restore.log" 2>&1 || die "rebuild at $head_ref failed: $log/restore.log"
[ -n "${KHIST:-}" ] || info "Fixes: tags checked for form only (fmt): set KHIST to a tree with upstream history"
info "clang: not run (the base needs clang >= 17; bookworm has 16 at most)"
info "details in $log/"
[ $red = 0 ] || { echo "check: red cells above"; exit 1; }
echo "check: all green"
