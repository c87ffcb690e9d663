#!/usr/bin/env bash
# Makes every NuGet package of TcpFreeze into one folder (default artifacts/packages), ready for a local folder source
# (see README, "Install") or a feed:
#   TcpFreeze.Native, TcpFreeze.Ebpf.Interop, TcpFreeze, TcpFreeze.CriuHooks (+ .snupkg symbol packages)
#   TcpFreeze.Cli            the tool package `dotnet tool install TcpFreeze.Cli` finds; it points to
#   TcpFreeze.Cli.linux-x64  the NativeAOT tool (made only on x86-64 Linux: NativeAOT does not cross-compile)
#   TcpFreeze.Cli.any        the framework-dependent tool, for every other platform
# The version comes from git tags (MinVer). With CI=true the build is a CI build (ContinuousIntegrationBuild):
# deterministic, source paths mapped to /_/ in the PDBs and in the BPF object's debug info.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-artifacts/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

solution=TcpFreeze.slnx
dotnet pack "$solution" -c Release -o "$out" </dev/null
dotnet pack src/TcpFreeze.Cli -c Release -r any -o "$out" </dev/null
if [[ $(uname -m) == x86_64 ]]; then
  dotnet pack src/TcpFreeze.Cli -c Release -r linux-x64 -o "$out" </dev/null
else
  echo "[pack] $(uname -m): no TcpFreeze.Cli.linux-x64 (NativeAOT builds it on x86-64 only); the tool installs TcpFreeze.Cli.any here" >&2
fi
echo "[pack] packages in $out:"
ls -1 "$out"
