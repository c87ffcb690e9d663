#!/usr/bin/env bash
# Installs (or, with --uninstall, removes) the tcpfreeze command and the CRIU hook on this machine:
#
#   scripts/install.sh [--prefix DIR] [--root DIR] [--with-criu-config[=ENGINE]] [--with-systemd] [--from DIR]
#   scripts/install.sh --uninstall [--prefix DIR] [--root DIR] [--purge]
#
# What it installs (paths as seen on the running machine; --root DIR puts them under DIR instead, DESTDIR style):
#   PREFIX/bin/tcpfreeze, PREFIX/bin/tcpfreeze-criu-hook-engine
#                                                          NativeAOT binaries (no .NET runtime needed to run them),
#                                                          published from this checkout for this machine's
#                                                          architecture, or copied from --from DIR
#   PREFIX/bin/tcpfreeze-criu-hook                         the action script CRIU runs: a small front end that
#                                                          hands each step to the agent, or runs the engine
#   PREFIX/share/bash-completion/completions/tcpfreeze     bash completion and the tcpfreeze(8) man page, written by
#   PREFIX/share/man/man8/tcpfreeze.8                      the installed command from its own command definitions
#                                                          (`tcpfreeze completion bash`, `tcpfreeze manpage`)
#   /etc/tcpfreeze/criu-hook.conf                          the hook's settings (never replaced when it exists)
#   /etc/criu/default.conf (or runc.conf)                  with --with-criu-config[=criu|lxc|runc|podman]: the block that
#                                                          `tcpfreeze criu-config --write` puts there
#   /etc/systemd/system/tcpfreeze-attach.service           with --with-systemd: attaches the programs at boot (the
#                                                          fast path: the hook then finds them attached), and
#                                                          keep-attached = true in a new settings file
#   /etc/systemd/system/tcpfreeze-agent.service            with --with-systemd: the resident agent, which takes
#                                                          each CRIU step over /run/tcpfreeze/agent.sock
#   PREFIX/share/tcpfreeze/install-manifest                what was installed, with checksums: --uninstall removes
#                                                          exactly that (and folders it created, once empty)
# PREFIX defaults to /usr/local. --uninstall keeps a file changed since it was installed (and says so) unless
# --purge is given. Installing again over an installation updates it (the manifest keeps what each file was).
# Needs root for the real system folders; into --root DIR it needs only write access there (for tests and packaging).
set -euo pipefail

readonly REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly UNIT_NAME=tcpfreeze-attach.service
readonly AGENT_UNIT=tcpfreeze-agent.service
readonly SETTINGS=/etc/tcpfreeze/criu-hook.conf   # HookSettings.DefaultConfigPath: the hook reads no other file
readonly UNIT_DIR=/etc/systemd/system
readonly CRIU_DIR=/etc/criu

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

prefix=/usr/local root= criu_engine= systemd= from= uninstall= purge=
while (($#)); do
  case $1 in
    --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --root) [[ $# -ge 2 ]] || die "--root needs a folder"; root=$2; shift ;;
    --root=*) root=${1#*=} ;;
    --with-criu-config) criu_engine=criu ;;
    --with-criu-config=*) criu_engine=${1#*=} ;;
    --with-systemd) systemd=1 ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a folder"; from=$2; shift ;;
    --from=*) from=${1#*=} ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

# The prefix is written into CRIU's configuration and the unit, which cannot carry white space or quotes.
[[ $prefix == /* && $prefix != *[[:space:]\"\'\\]* ]] || die "--prefix must be an absolute path without white space or quotes, not '$prefix'"
prefix=${prefix%/}
[[ -n $prefix ]] || prefix=/
if [[ -n $root ]]; then
  [[ -d $root ]] || die "--root $root is not a folder"
  root=$(cd "$root" && pwd)
  [[ $root == / ]] && root=
fi
case $criu_engine in ''|criu|lxc|runc|podman) ;; *) die "--with-criu-config=ENGINE: ENGINE is criu, lxc, runc or podman, not '$criu_engine'" ;; esac
# LXC runs CRIU itself, which reads default.conf: the same file as CRIU run directly.
[[ $criu_engine == lxc ]] && criu_engine=criu
[[ -z $purge || -n $uninstall ]] || die "--purge goes with --uninstall"
if [[ -n $uninstall && ( -n $criu_engine || -n $systemd || -n $from ) ]]; then
  die "--uninstall takes only --prefix, --root and --purge (it removes what the manifest lists)"
fi

bin=${prefix%/}/bin
manifest=${prefix%/}/share/tcpfreeze/install-manifest
# R PATH: where PATH of the target system is in this file system.
R() { printf '%s%s' "$root" "$1"; }
# Systemd and CRIU changes are applied to the running system only when --root is not given.
on_live_system() { [[ -z $root ]]; }
systemd_running() { on_live_system && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------------- manifest
# One line per thing installed, tab-separated, paths as on the target system:
#   file   PATH  SHA256          a file this script wrote
#   dir    PATH                  a folder this script created (removed at uninstall once empty)
#   criu   ENGINE  CONFIG_DIR    the block `criu-config --write` added
#   created PATH                 a file another step created (CRIU's configuration file): removed at uninstall when
#                                nothing but white space is left in it
#   enabled UNIT                 a unit this script enabled with systemctl
declare -A files=() dirs=() created=() criu=() enabled=()
read_manifest() {
  local m
  m=$(R "$manifest")
  [[ -f $m ]] || return 1
  local kind a b
  while IFS=$'\t' read -r kind a b; do
    case $kind in
      file) files[$a]=$b ;;
      dir) dirs[$a]=1 ;;
      created) created[$a]=1 ;;
      criu) criu[$a]=$b ;;
      enabled) enabled[$a]=1 ;;
      '#'*|'') ;;
      *) die "$m: unknown line '$kind'" ;;
    esac
  done <"$m"
}
write_manifest() {
  local m tmp p
  m=$(R "$manifest")
  make_dir "$(dirname "$manifest")"
  tmp=$m.tmp.$$
  {
    printf '# Written by TcpFreeze scripts/install.sh; `scripts/install.sh --uninstall --prefix %s` removes what it lists.\n' "$prefix"
    for p in "${!dirs[@]}"; do printf 'dir\t%s\n' "$p"; done | sort
    for p in "${!files[@]}"; do printf 'file\t%s\t%s\n' "$p" "${files[$p]}"; done | sort
    for p in "${!created[@]}"; do printf 'created\t%s\n' "$p"; done | sort
    for p in "${!criu[@]}"; do printf 'criu\t%s\t%s\n' "$p" "${criu[$p]}"; done | sort
    for p in "${!enabled[@]}"; do printf 'enabled\t%s\n' "$p"; done | sort
  } >"$tmp"
  mv -f "$tmp" "$m"
}

# make_dir PATH: creates PATH (as on the target) and records every folder it had to create.
make_dir() {
  local path=$1 parts=() p
  while [[ $path != / && ! -d $(R "$path") ]]; do parts=("$path" "${parts[@]}"); path=$(dirname "$path"); done
  for p in "${parts[@]}"; do
    mkdir -m 0755 "$(R "$p")"
    dirs[$p]=1
  done
}

# put_file SOURCE PATH MODE: installs SOURCE as PATH atomically (a running hook keeps its old binary), unless PATH
# is a file this script did not install.
put_file() {
  local source=$1 path=$2 mode=$3 target tmp
  target=$(R "$path")
  if [[ -e $target && -z ${files[$path]:-} ]]; then
    die "$target exists and was not installed by this script: remove it first, or install with another --prefix"
  fi
  make_dir "$(dirname "$path")"
  tmp=$(dirname "$target")/.$(basename "$target").tmp.$$
  install -m "$mode" "$source" "$tmp"
  mv -f "$tmp" "$target"
  files[$path]=$(sha "$target")
  log "installed $target"
}

# ------------------------------------------------------------------------------------------------------ uninstall
if [[ -n $uninstall ]]; then
  read_manifest || die "nothing to uninstall: no $(R "$manifest") (was it installed with this --prefix and --root?)"
  for unit in "${!enabled[@]}"; do
    if systemd_running; then
      systemctl disable --now "$unit" && log "disabled and stopped $unit" || log "WARNING: systemctl disable --now $unit failed"
    else
      log "WARNING: $unit was enabled by the install, but systemd is not running here: 'systemctl disable $unit' by hand"
    fi
  done
  # The CRIU block goes first, with the installed command (it is removed below).
  for engine in "${!criu[@]}"; do
    config_dir=${criu[$engine]}
    if [[ -x $(R "$bin/tcpfreeze") ]]; then
      "$(R "$bin/tcpfreeze")" criu-config --engine "$engine" --hook "$bin/tcpfreeze-criu-hook" --config-dir "$(R "$config_dir")" --remove >/dev/null \
        && log "removed the tcpfreeze block from CRIU's configuration in $(R "$config_dir") (engine $engine)" \
        || log "WARNING: 'tcpfreeze criu-config --engine $engine --remove' failed: remove the '# BEGIN tcpfreeze' block from $(R "$config_dir") by hand"
    else
      log "WARNING: $(R "$bin/tcpfreeze") is gone: remove the '# BEGIN tcpfreeze' block from $(R "$config_dir") by hand"
    fi
  done
  for path in "${!created[@]}"; do
    target=$(R "$path")
    if [[ -f $target && -z $(tr -d '[:space:]' <"$target") ]]; then rm -f "$target"; log "removed $target (empty)"; fi
  done
  kept=0
  for path in "${!files[@]}"; do
    target=$(R "$path")
    [[ -e $target || -L $target ]] || continue
    if [[ -z $purge && ( ! -f $target || $(sha "$target") != "${files[$path]}" ) ]]; then
      log "kept $target: changed since it was installed (--purge removes it anyway)"
      kept=$((kept + 1))
      continue
    fi
    rm -f "$target"
    log "removed $target"
  done
  rm -f "$(R "$manifest")"
  # Folders deepest first, and only those the install created and that are empty now.
  while IFS= read -r path; do
    [[ -n $path ]] || continue
    rmdir "$(R "$path")" 2>/dev/null && log "removed folder $(R "$path")" || true
  done < <(for p in "${!dirs[@]}"; do printf '%d\t%s\n' "${#p}" "$p"; done | sort -rn | cut -f2-)
  if ((${#enabled[@]})) && systemd_running; then systemctl daemon-reload || true; fi
  if ((kept)); then log "uninstalled from $(R "$prefix"); $kept changed file(s) kept"; else log "uninstalled from $(R "$prefix")"; fi
  exit 0
fi

# -------------------------------------------------------------------------------------------------------- install
read_manifest && log "updating the installation in $(R "$prefix") ($(R "$manifest"))" || true

case $(uname -m) in
  x86_64) rid=linux-x64 ;;
  aarch64|arm64) rid=linux-arm64 ;;
  *) die "no .NET runtime identifier known for $(uname -m) (x86_64 and aarch64 are)" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/tcpfreeze-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [[ -n $from ]]; then
  for name in tcpfreeze tcpfreeze-criu-hook tcpfreeze-criu-hook-engine; do
    [[ -x $from/$name ]] || die "--from $from has no executable $name"
  done
  cli=$from/tcpfreeze hook=$from/tcpfreeze-criu-hook engine=$from/tcpfreeze-criu-hook-engine
else
  command -v dotnet >/dev/null || die "dotnet (the .NET 10 SDK) is needed to build the binaries (or pass --from DIR with them)"
  export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
  log "publishing tcpfreeze and tcpfreeze-criu-hook (NativeAOT, $rid); this takes a minute or two"
  for project in src/TcpFreeze.Cli src/CriuHooks.Hook; do
    if ! dotnet publish "$REPO/$project" -c Release -r "$rid" -p:PublishAot=true -o "$work/publish" -nologo -v quiet \
        </dev/null >"$work/publish.log" 2>&1; then
      cat "$work/publish.log" >&2
      die "dotnet publish $project failed"
    fi
  done
  cli=$work/publish/tcpfreeze hook=$work/publish/tcpfreeze-criu-hook engine=$work/publish/tcpfreeze-criu-hook-engine
  [[ -x $cli && -x $hook && -x $engine ]] || die "the publish made no $cli, $hook or $engine"
fi

put_file "$cli" "$bin/tcpfreeze" 0755
# The engine before the front end: a CRIU step that starts between the two finds the engine it needs.
put_file "$engine" "$bin/tcpfreeze-criu-hook-engine" 0755
put_file "$hook" "$bin/tcpfreeze-criu-hook" 0755
"$(R "$bin/tcpfreeze")" --version >/dev/null || die "the installed $(R "$bin/tcpfreeze") does not run"

# Completion and man page from the installed command itself, so they list exactly the commands and options it has.
"$(R "$bin/tcpfreeze")" completion bash >"$work/tcpfreeze.bash" || die "'tcpfreeze completion bash' failed"
put_file "$work/tcpfreeze.bash" "${prefix%/}/share/bash-completion/completions/tcpfreeze" 0644
"$(R "$bin/tcpfreeze")" manpage >"$work/tcpfreeze.8" || die "'tcpfreeze manpage' failed"
put_file "$work/tcpfreeze.8" "${prefix%/}/share/man/man8/tcpfreeze.8" 0644

# The settings: written when missing, never replaced (an operator's file, or one an earlier install left).
if [[ -e $(R "$SETTINGS") ]]; then
  log "kept the existing settings $(R "$SETTINGS")"
  if [[ -n $systemd ]] && ! grep -Eq '^[[:space:]]*keep-attached[[:space:]]*=[[:space:]]*true' "$(R "$SETTINGS")"; then
    log "WARNING: set 'keep-attached = true' in $(R "$SETTINGS"), or the hook detaches what $UNIT_NAME attached after the first restore"
  fi
else
  cat >"$work/criu-hook.conf" <<EOF
# Settings of tcpfreeze-criu-hook, the CRIU action script (CRIU runs it with a stripped environment: this file is
# where its settings come from). Keys: lease-seconds, interfaces, pin-root, log-file, keep-attached, ingress, kick.
# Installed by scripts/install.sh; '--uninstall' removes it unless it was changed.

# How long a freeze holds at most: a dump, the copy of the images and the restore must fit.
lease-seconds = 120
# Interfaces to attach to (default: every interface that is up, loopback included).
#interfaces = eth0, lo
#pin-root = /sys/fs/bpf/tcpfreeze
# The hook's messages always go to CRIU's log; a file receives them too.
#log-file = /var/log/tcpfreeze-hook.log
# true: leave the programs attached after the last thaw (the next dump starts faster).
keep-attached = $([[ -n $systemd ]] && echo true || echo false)
# xdp, or tc to coexist with another XDP program on the interfaces.
#ingress = xdp
EOF
  put_file "$work/criu-hook.conf" "$SETTINGS" 0644
fi

if [[ -n $systemd ]]; then
  cat >"$work/$UNIT_NAME" <<EOF
[Unit]
Description=TcpFreeze: attach the freeze programs at boot, so that CRIU's hook finds them ready
Documentation=https://github.com/tcpfreeze/tcpfreeze#install
# Attach to the interfaces that are up once the network is; the hook attaches to later ones itself.
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
# Every interface that is up; to match 'interfaces = ...' or 'ingress = tc' in $SETTINGS, add --dev IFACE or
# --ingress tc here (systemctl edit $UNIT_NAME). --hook-settings: the pins are where the hook's pin-root says.
ExecStart=$bin/tcpfreeze --hook-settings $SETTINGS attach
# Stopping the unit removes the programs and pins only when nothing is frozen: a stop or a shutdown during a
# migration leaves the dump's freeze in place (its lease bounds it) and says so; 'tcpfreeze detach' thaws anyway.
ExecStop=$bin/tcpfreeze --hook-settings $SETTINGS detach --if-idle

[Install]
WantedBy=multi-user.target
EOF
  put_file "$work/$UNIT_NAME" "$UNIT_DIR/$UNIT_NAME" 0644
  cat >"$work/$AGENT_UNIT" <<EOF
[Unit]
Description=TcpFreeze: the resident agent that takes each step of CRIU's hook (a connection instead of a process start)
Documentation=https://github.com/tcpfreeze/tcpfreeze#install
# It serves CRIU runs in its own PID, mount and network namespaces (the host's); others run the hook themselves.
After=$UNIT_NAME

[Service]
Type=simple
ExecStart=$bin/tcpfreeze-criu-hook-engine --agent
# A stop lets the steps in progress finish (new ones run in the hook itself meanwhile), and leaves the dump and
# restore watchers the agent started running: they guard migrations still in progress.
KillMode=process
TimeoutStopSec=60
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
  put_file "$work/$AGENT_UNIT" "$UNIT_DIR/$AGENT_UNIT" 0644
  if systemd_running; then
    systemctl daemon-reload
    for unit in "$UNIT_NAME" "$AGENT_UNIT"; do
      systemctl enable --now "$unit"
      enabled[$unit]=1
      log "enabled and started $unit"
    done
  elif on_live_system; then
    log "systemd is not running here: enable the units later with 'systemctl enable --now $UNIT_NAME $AGENT_UNIT'"
  fi
fi

if [[ -n $criu_engine ]]; then
  make_dir "$CRIU_DIR"
  case $criu_engine in criu) criu_file=$CRIU_DIR/default.conf ;; *) criu_file=$CRIU_DIR/runc.conf ;; esac
  [[ -e $(R "$criu_file") ]] || created[$criu_file]=1
  # Recorded before the write, so that a failed write is still undone by --uninstall.
  criu[$criu_engine]=$CRIU_DIR
  write_manifest
  rc=0
  "$(R "$bin/tcpfreeze")" criu-config --engine "$criu_engine" --hook "$bin/tcpfreeze-criu-hook" --config-dir "$(R "$CRIU_DIR")" --write \
    2>"$work/criu-config.err" || rc=$?
  # Under --root the hook is at $root$bin, not yet at $bin: the command's warning about that is expected.
  if on_live_system; then cat "$work/criu-config.err" >&2; else grep -vF "$bin/tcpfreeze-criu-hook does not exist" "$work/criu-config.err" >&2 || true; fi
  ((rc == 0)) || die "tcpfreeze criu-config --write failed (exit $rc); 'scripts/install.sh --uninstall' undoes what was installed"
fi

write_manifest
log "installed into $(R "$prefix") (manifest $(R "$manifest")); remove with: scripts/install.sh --uninstall --prefix $prefix${root:+ --root $root}"
