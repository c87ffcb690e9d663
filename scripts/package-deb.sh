#!/usr/bin/env bash
# Builds a Debian package of the tcpfreeze command, the CRIU hook and its agent with Debian's own tools:
#
#   scripts/package-deb.sh [--from DIR] [--out DIR]
#
# The files are what scripts/install.sh puts on a machine (it is run into a staging folder with --prefix /usr
# --with-systemd), laid out as Debian wants them: binaries in /usr/bin, the units in /lib/systemd/system, the
# settings file /etc/tcpfreeze/criu-hook.conf as a conffile (an operator's changes survive upgrades; purge removes
# it). dpkg keeps the list of files, so the installer's own manifest is left out. The maintainer scripts enable the
# units where systemd runs. Removing the package stops the agent and detaches the programs only when nothing is
# frozen (`detach --if-idle`): a removal during a migration leaves its freeze to its lease, never a connection
# frozen for good. --from DIR takes published binaries (tcpfreeze, tcpfreeze-criu-hook, tcpfreeze-criu-hook-engine)
# instead of publishing them; --out DIR (default artifacts/deb) receives tcpfreeze_VERSION_ARCH.deb.
set -euo pipefail

readonly REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf '[deb] ERROR: %s\n' "$*" >&2; exit 1; }

from= out=$REPO/artifacts/deb
while (($#)); do
  case $1 in
    --from) [[ $# -ge 2 ]] || die "--from needs a folder"; from=$2; shift ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a folder"; out=$2; shift ;;
    -h|--help) sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (scripts/package-deb.sh [--from DIR] [--out DIR])" ;;
  esac
  shift
done
command -v dpkg-deb >/dev/null || die "dpkg-deb (Debian package dpkg) is needed"

arch=$(dpkg --print-architecture)
# A Debian version from git: the package's own version, then the commit (what MinVer calls the height is not needed).
commit=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version="0.1.0+git$(git -C "$REPO" log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0).$commit"

work=$(mktemp -d "${TMPDIR:-/tmp}/tcpfreeze-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/root
mkdir -p "$stage"
bash "$REPO/scripts/install.sh" --root "$stage" --prefix /usr --with-systemd ${from:+--from "$from"} >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; die "scripts/install.sh into the staging folder failed"; }

# Debian's places: units shipped by a package live in /lib/systemd/system (/etc/systemd/system is the operator's).
mkdir -p "$stage/lib/systemd/system"
mv "$stage"/etc/systemd/system/*.service "$stage/lib/systemd/system/"
rmdir -p "$stage/etc/systemd/system" 2>/dev/null || true
rm -rf "$stage/usr/share/tcpfreeze" # the installer's manifest: dpkg keeps its own
gzip -9n "$stage/usr/share/man/man8/tcpfreeze.8"
mkdir -p "$stage/usr/share/doc/tcpfreeze"
cp "$REPO/LICENSE" "$stage/usr/share/doc/tcpfreeze/copyright"

mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: tcpfreeze
Version: $version
Architecture: $arch
Maintainer: TcpFreeze contributors <tcpfreeze@users.noreply.github.com>
Depends: libbpf1, libelf1, zlib1g
Recommends: criu, nftables
Section: net
Priority: optional
Homepage: https://github.com/tcpfreeze/tcpfreeze
Description: freeze and thaw TCP connections with eBPF, and a CRIU network lock
 tcpfreeze freezes TCP connections in the kernel (XDP and TC programs driven by
 BPF maps), so that CRIU can checkpoint and migrate a process holding thousands
 of connections without its iptables network lock. The package has the
 tcpfreeze command, the CRIU action script tcpfreeze-criu-hook with its engine
 and resident agent, and systemd units that attach the programs at boot and run
 the agent.
EOF
echo /etc/tcpfreeze/criu-hook.conf >"$stage/DEBIAN/conffiles"

cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable --now tcpfreeze-attach.service tcpfreeze-agent.service || true
fi
EOF
cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# Never a connection frozen for good: the attach unit's stop (and the command without systemd) detaches only when
# nothing is frozen; what a migration in progress froze is left to its lease.
if [ -d /run/systemd/system ]; then
  systemctl disable --now tcpfreeze-agent.service tcpfreeze-attach.service || true
elif [ -x /usr/bin/tcpfreeze ]; then
  /usr/bin/tcpfreeze --hook-settings /etc/tcpfreeze/criu-hook.conf detach --if-idle || true
fi
EOF
cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
  rmdir /etc/tcpfreeze 2>/dev/null || true
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$out"
deb=$out/tcpfreeze_${version}_$arch.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
