#!/usr/bin/env bash
# Prepares this machine (Debian 12, root) for building and testing TcpFreeze:
#   1. installs the Debian packages the build, the tests, the CRIU build and the container-engine tests need
#      (apt-get update only when something is missing), never Debian's own criu package;
#   2. mounts bpffs on /sys/fs/bpf;
#   3. builds CRIU 4.2.1 from Debian sid's source package into a cache folder (Debian bookworm's criu 3.17 does not
#      start on this kernel; 4.1 cannot dump TCP sockets on kernels >= 6.16) and checks it with `criu check`.
# Idempotent: a second run installs, downloads and builds nothing and takes about a second.
#
# Writes $TCPFREEZE_CACHE/env (default /var/cache/tcpfreeze/env), to be sourced, which exports
#   TCPFREEZE_CRIU  the CRIU 4.2.1 binary tests should run
#   TCPFREEZE_BIN   a folder holding `criu` (a link to that binary), to put first on PATH for tools that run `criu`
# and links /usr/local/sbin/criu to it when no working CRIU 4.2.1 is on PATH.
set -euo pipefail

readonly CRIU_VERSION=4.2.1
readonly CACHE=${TCPFREEZE_CACHE:-/var/cache/tcpfreeze}
readonly CRIU_DIR=$CACHE/criu-$CRIU_VERSION
readonly CRIU_BIN=$CRIU_DIR/criu/criu
readonly CRIU_TARBALL=criu_$CRIU_VERSION.orig.tar.xz

# Debian packages. Present on a fresh machine of this kind: clang-14, llvm, libbpf1, python3 (listed anyway, the
# check costs nothing). `nginx` is the server binary itself (nginx-light only adds an echo module to it).
readonly PACKAGES=(
  # build: the kernel programs (bpf/*.c) are compiled with clang-14 against libbpf's and the kernel's headers
  clang-14 llvm libbpf-dev libbpf1 linux-libc-dev libc6-dev
  # tests: namespaces, BPF inspection, the lock methods CRIU uses, servers and load generators, and strace (which
  # proves that the command and the hook never run a shell: NoShellTests)
  iproute2 bpftool iptables nftables nginx apache2-utils wrk python3 procps util-linux mount strace
  # the CRIU build: FACTS.md's list, plus the compiler, make, xz for the tarball, and libprotobuf-dev (only a
  # Recommends of protobuf-compiler, but CRIU's images/Makefile needs its google/protobuf/descriptor.proto)
  gcc make xz-utils pkg-config libprotobuf-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf libnl-3-dev libnl-route-3-dev
  libnet1-dev libcap-dev libgnutls28-dev libnftables-dev libbsd-dev libaio-dev uuid-dev
  # the container-engine tests (tests/TcpFreeze.IntegrationTests/Containers): runc, a static busybox for the image's rootfs,
  # then podman. Order matters (see install_packages): podman depends on "crun | runc", and runc recommends criu.
  runc busybox-static podman
  # scripts/install.sh and its tests: NativeAOT links with `clang`, else `gcc` (above; Debian 12 has no plain `clang`),
  # zlib comes with the SDK; systemd-analyze checks the installer's unit
  binutils systemd
  # Docker (docker.io 20.10) and containerd 1.6 for the container-engine tests, which start their own dockerd and containerd in
  # a private mount namespace; installing them starts no service (policy-rc.d, below)
  docker.io containerd
  # LXC 5.0 (lxc-start, lxc-checkpoint) for the LXC container test; its lxc-net bridge service is not started either
  lxc
)
# Installed in a second apt-get run, after everything else (runc above all) is there.
readonly LATE_PACKAGES=(podman)

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

now_ns() { date +%s%N; }
declare -a TIMINGS=()
phase_started=0
phase_begin() { phase_started=$(now_ns); log "== $1"; }
phase_end() {
  local ms=$(( ($(now_ns) - phase_started) / 1000000 ))
  local line
  line=$(printf '%-10s %6d.%03d s' "$1" $((ms / 1000)) $((ms % 1000)))
  TIMINGS+=("$line")
  log "$line"
}
setup_started=$(now_ns)

is_root() { [[ $(id -u) -eq 0 ]]; }

mkdir -p "$CACHE" 2>/dev/null || die "cannot create $CACHE (run as root or set TCPFREEZE_CACHE)"
# Several worktrees may run this at once on one machine: one at a time.
exec 9>"$CACHE/setup.lock"
flock -w 1800 9 || die "another setup.sh held $CACHE/setup.lock for 30 minutes"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -o DPkg::Lock::Timeout=600)

# ---------------------------------------------------------------------------------------------------- packages
phase_begin packages
declare -A installed=()
while IFS=$'\t' read -r name status; do
  [[ $status == "ii " ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  is_root || die "missing packages (${missing[*]}) and not root"
  log "installing: ${missing[*]}"
  # Installing a server package must not start its service (nginx would listen on port 80 of every address).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get "${APT_OPTS[@]}" update </dev/null
  # Two runs, both without recommends: runc's Recommends is Debian's criu 3.17, which does not start on this
  # kernel and would shadow CRIU 4.2.1 for any tool that finds `criu` on PATH first; and with runc already there,
  # podman's "crun | runc" is satisfied by runc (Debian's crun has no CRIU support and does not start here).
  early=() late=()
  for p in "${missing[@]}"; do
    if [[ " ${LATE_PACKAGES[*]} " == *" $p "* ]]; then late+=("$p"); else early+=("$p"); fi
  done
  criu_before=$(dpkg-query -W -f='${db:Status-Abbrev}' criu 2>/dev/null || true)
  ((${#early[@]} == 0)) || apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${early[@]}" </dev/null
  ((${#late[@]} == 0)) || apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${late[@]}" </dev/null
  criu_after=$(dpkg-query -W -f='${db:Status-Abbrev}' criu 2>/dev/null || true)
  if [[ $criu_after == "ii " && $criu_before != "ii " ]]; then
    die "installing ${missing[*]} pulled in Debian's criu package (3.17, which does not start on this kernel); remove it with 'apt-get remove criu' and report this"
  fi
else
  log "all ${#PACKAGES[@]} packages present"
fi
if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' criu 2>/dev/null || true) == "ii " ]]; then
  log "WARNING: Debian's criu package is installed (not by this script); tools must find CRIU $CRIU_VERSION first on PATH"
else
  log "Debian's criu package is not installed (as intended)"
fi
phase_end packages

# ------------------------------------------------------------------------------------------------------- bpffs
phase_begin bpffs
if mountpoint -q /sys/fs/bpf; then
  log "bpffs already mounted on /sys/fs/bpf"
else
  is_root || die "bpffs is not mounted on /sys/fs/bpf and not root"
  # mode=0700, as TcpFreeze mounts it: without a mode bpffs is drwxrwxrwt and any user may create folders in it.
  mount -t bpf -o mode=0700 bpf /sys/fs/bpf
  log "mounted bpffs on /sys/fs/bpf (mode 0700)"
fi
phase_end bpffs

# -------------------------------------------------------------------------------------------------------- CRIU
criu_is_wanted() { [[ -x $1 ]] && "$1" --version 2>/dev/null | grep -qx "Version: $CRIU_VERSION"; }

# Writes a deb-src entry for sid, with the URIs and Signed-By of the system's own Debian archive entry.
write_sid_source() {
  python3 - "$1" <<'PY'
import re, sys
codename = dict(l.rstrip("\n").split("=", 1) for l in open("/etc/os-release") if "=" in l).get("VERSION_CODENAME", "").strip('"')

def deb822(path):
    text = open(path).read()
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and codename in fields.get("suites", "").split():
            return fields.get("uris", "").split()[0], fields.get("signed-by")
    return None

def one_line(path):
    for line in open(path):
        m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", line)
        if m and m.group(3) == codename:
            signed = re.search(r"signed-by=(\S+?)[\s\]]", m.group(1) or "")
            return m.group(2), signed.group(1) if signed else None
    return None

found = None
for path, parse in (("/etc/apt/sources.list.d/debian.sources", deb822), ("/etc/apt/sources.list", one_line)):
    try:
        found = parse(path)
    except FileNotFoundError:
        continue
    if found:
        break
if not found:
    sys.exit("no Debian archive entry for '%s' in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" % codename)
uri, signed_by = found
with open(sys.argv[1], "w") as out:
    out.write("Types: deb-src\nURIs: %s\nSuites: sid\nComponents: main\n" % uri)
    if signed_by:
        out.write("Signed-By: %s\n" % signed_by)
PY
}

# Fetches and hash-checks criu_4.2.1.orig.tar.xz into $CACHE/src, through an apt configuration of its own (its own
# sources, its own lists), so that the system's apt never sees sid.
fetch_criu_source() {
  local src=$CACHE/src apt_dir=$CACHE/apt-sid
  mkdir -p "$src"
  [[ -s $src/$CRIU_TARBALL ]] && { log "using cached $src/$CRIU_TARBALL"; return; }
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial"
  write_sid_source "$apt_dir/sources.list.d/tcpfreeze-sid-src.sources"
  local opts=(-q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
              -o "Acquire::Languages=none")
  apt-get "${opts[@]}" update </dev/null
  local expected
  expected=$(apt-cache "${opts[@]}" showsrc "criu" | awk -v f="$CRIU_TARBALL" '
      /^Checksums-Sha256:/ { in_sums = 1; next }
      /^[^ ]/ { in_sums = 0 }
      in_sums && $3 == f { print $1; exit }')
  [[ -n $expected ]] || die "sid has no $CRIU_TARBALL any more (criu moved on?): $(apt-cache "${opts[@]}" showsrc criu | grep -m1 '^Version:')"
  # The mirror lacks the Debian tarball next to the orig one, and apt exits 100 for it: accept that when the
  # orig tarball is there with the hash the signed Sources index gives.
  chown _apt "$src" 2>/dev/null || true   # lets apt download in its sandbox
  local rc=0
  (cd "$src" && apt-get "${opts[@]}" source --download-only "criu/sid" </dev/null) || rc=$?
  [[ -s $src/$CRIU_TARBALL ]] || die "apt-get source criu/sid exited $rc without $CRIU_TARBALL"
  local actual
  actual=$(sha256sum "$src/$CRIU_TARBALL" | cut -d' ' -f1)
  if [[ $actual != "$expected" ]]; then
    rm -f "$src/$CRIU_TARBALL"
    die "$CRIU_TARBALL: sha256 $actual, expected $expected"
  fi
  log "fetched $CRIU_TARBALL (sha256 $actual; apt-get source exited $rc)"
  rm -rf "$apt_dir"
}

build_criu() {
  local work=$CACHE/build.$$
  rm -rf "$CACHE"/build.* "$CRIU_DIR"   # leftovers of a failed run (we hold the lock)
  mkdir -p "$work"
  tar -xJf "$CACHE/src/$CRIU_TARBALL" -C "$work"
  [[ -d $work/criu-$CRIU_VERSION ]] || die "$CRIU_TARBALL did not unpack to criu-$CRIU_VERSION/"
  log "make -j2 criu (log: $CACHE/criu-build.log)"
  if ! make -C "$work/criu-$CRIU_VERSION" -j2 criu >"$CACHE/criu-build.log" 2>&1; then
    tail -n 40 "$CACHE/criu-build.log" >&2
    die "CRIU build failed (whole log: $CACHE/criu-build.log)"
  fi
  mv "$work/criu-$CRIU_VERSION" "$CRIU_DIR"
  rm -rf "$work"
}

phase_begin criu-fetch
if criu_is_wanted "$CRIU_BIN"; then
  log "CRIU $CRIU_VERSION already built: $CRIU_BIN"
  criu_built=1
else
  is_root || die "CRIU $CRIU_VERSION is not built in $CRIU_DIR and not root"
  fetch_criu_source
  criu_built=
fi
phase_end criu-fetch

phase_begin criu-build
if [[ -z $criu_built ]]; then
  build_criu
  criu_is_wanted "$CRIU_BIN" || die "$CRIU_BIN does not say Version: $CRIU_VERSION"
  log "built $CRIU_BIN"
fi
phase_end criu-build

phase_begin criu-expose
mkdir -p "$CACHE/bin"
[[ $(readlink "$CACHE/bin/criu" || true) == "$CRIU_BIN" ]] || ln -sfn "$CRIU_BIN" "$CACHE/bin/criu"
env_text="export TCPFREEZE_CRIU=$CRIU_BIN
export TCPFREEZE_BIN=$CACHE/bin"
if [[ $(cat "$CACHE/env" 2>/dev/null || true) != "$env_text" ]]; then
  printf '%s\n' "$env_text" >"$CACHE/env.tmp"
  mv "$CACHE/env.tmp" "$CACHE/env"
fi
on_path=$(command -v criu || true)
if [[ -n $on_path ]] && criu_is_wanted "$on_path"; then
  log "criu on PATH is already $CRIU_VERSION: $on_path"
elif [[ -e /usr/local/sbin/criu && ! -L /usr/local/sbin/criu ]]; then
  log "WARNING: /usr/local/sbin/criu is a file of someone else's, not $CRIU_VERSION: left alone; use \$TCPFREEZE_CRIU"
elif is_root; then
  ln -sfn "$CRIU_BIN" /usr/local/sbin/criu
  hash -r
  log "linked /usr/local/sbin/criu -> $CRIU_BIN (criu on PATH is now: $(command -v criu || echo none))"
fi
phase_end criu-expose

phase_begin criu-check
if "$CRIU_BIN" check >"$CACHE/criu-check.log" 2>&1 && grep -q "Looks good" "$CACHE/criu-check.log"; then
  log "criu check: $(grep "Looks good" "$CACHE/criu-check.log")"
else
  cat "$CACHE/criu-check.log" >&2
  die "criu check did not say \"Looks good\" (log: $CACHE/criu-check.log)"
fi
phase_end criu-check

# ---------------------------------------------------------------------------------------------------- promtool
# `promtool check metrics` checks what `tcpfreeze stats --format prometheus` writes (PrometheusTests). Debian's
# `prometheus` package (2.42) is the only source of promtool, and it is big (about 96 MB installed) and brings a
# server whose service its postinst would enable: only its promtool binary is taken, from the downloaded .deb,
# into $CACHE/prometheus, and linked into $CACHE/bin (the folder tests put on PATH through TCPFREEZE_BIN).
phase_begin promtool
readonly PROMTOOL=$CACHE/prometheus/promtool
if [[ -x $PROMTOOL ]] && "$PROMTOOL" --version >/dev/null 2>&1; then
  log "promtool present: $PROMTOOL"
else
  is_root || die "promtool is missing and not root"
  deb_dir=$(mktemp -d)
  chown _apt "$deb_dir" 2>/dev/null || chmod 0755 "$deb_dir"   # apt downloads as the _apt user
  if ! (cd "$deb_dir" && apt-get "${APT_OPTS[@]}" download prometheus </dev/null); then
    apt-get "${APT_OPTS[@]}" update </dev/null
    (cd "$deb_dir" && apt-get "${APT_OPTS[@]}" download prometheus </dev/null)
  fi
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  install -D -m 0755 "$deb_dir/root/usr/bin/promtool" "$PROMTOOL"
  rm -rf "$deb_dir"
  "$PROMTOOL" --version >/dev/null 2>&1 || die "$PROMTOOL does not run"
  log "extracted promtool from Debian's prometheus package: $PROMTOOL"
fi
[[ $(readlink "$CACHE/bin/promtool" || true) == "$PROMTOOL" ]] || ln -sfn "$PROMTOOL" "$CACHE/bin/promtool"
phase_end promtool

total_ms=$(( ($(now_ns) - setup_started) / 1000000 ))
log "timings:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
log "  $(printf '%-10s %6d.%03d s' total $((total_ms / 1000)) $((total_ms % 1000)))"
log "TCPFREEZE_CRIU=$CRIU_BIN  (source $CACHE/env to export it)"
