#!/usr/bin/env bash
# The long soak of issue 5: repeated CRIU migrations (dump + restore with the hook) of an
# echo server whose clients stream numbered lines on every connection; zero loss, zero
# leftovers after every cycle. Runs the soak test alone (so that machine-wide BPF counts
# are checked too) and writes the per-cycle table to benchmarks/results/soak-latest.md.
#   bash scripts/soak.sh [CYCLES [CONNECTIONS]]     (default 20 cycles, 1,500 connections)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# shellcheck source=/dev/null
source "${TCPFREEZE_CACHE:-/var/cache/tcpfreeze}/env"
export PATH="$TCPFREEZE_BIN:$PATH"
export HOME=${HOME:-/root} DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

export TCPFREEZE_SOAK_CYCLES=${1:-20} TCPFREEZE_SOAK_CONNECTIONS=${2:-1500} TCPFREEZE_SOAK_ALONE=1
export TCPFREEZE_SOAK_REPORT=$PWD/benchmarks/results/soak-latest.md
dotnet test tests/TcpFreeze.IntegrationTests/TcpFreeze.IntegrationTests.csproj -c Release \
  --filter "FullyQualifiedName~Criu.SoakTests" --logger "console;verbosity=detailed" </dev/null
echo "[soak] report: $TCPFREEZE_SOAK_REPORT"
