#!/usr/bin/env bash
# Prepares the machine (scripts/setup.sh), then runs the demo; arguments go to the demo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# shellcheck source=/dev/null
source "${TCPFREEZE_CACHE:-/var/cache/tcpfreeze}/env"
export PATH="$TCPFREEZE_BIN:$PATH"

[[ -d demo/TcpFreeze.Demo ]] || { echo "[demo] demo/TcpFreeze.Demo does not exist yet" >&2; exit 1; }
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
# The CRIU hook runs as its own NativeAOT executable; publish it once (about 30 s).
hook_dir=artifacts/hook
if [[ ! -x $hook_dir/tcpfreeze-criu-hook || -n $(find src -newer "$hook_dir/tcpfreeze-criu-hook" -name '*.cs' -print -quit) ]]; then
  echo "[demo] publishing the CRIU hook (NativeAOT)..."
  dotnet publish src/CriuHooks.Hook -c Release -o "$hook_dir" -nologo -v quiet >/dev/null
fi
exec dotnet run --project demo/TcpFreeze.Demo -c Release -- "$@" --hook "$PWD/$hook_dir/tcpfreeze-criu-hook"
