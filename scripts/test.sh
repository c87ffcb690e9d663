#!/usr/bin/env bash
# Prepares the machine (scripts/setup.sh), runs the whole test suite, and ends with the line
#   N passed, N failed, N skipped
# summed over every TRX file the run wrote (one per test project). Exits non-zero when the build or a
# `dotnet test` fails or no test was executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# TCPFREEZE_CRIU (the CRIU 4.2.1 binary) and TCPFREEZE_BIN (a folder whose `criu` is that binary).
# shellcheck source=/dev/null
source "${TCPFREEZE_CACHE:-/var/cache/tcpfreeze}/env"
export PATH="$TCPFREEZE_BIN:$PATH"
# Optional: TCPFREEZE_TEST_TAG (up to 8 letters and digits) prefixes the root tests' namespaces and puts their pin
# roots under /sys/fs/bpf/TAG/, so that two runs on one machine never meet; TCPFREEZE_HOOK names a published hook.

export HOME=${HOME:-/root}
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if [[ ${CI:-} == true ]]; then
  # No build servers left running after the run (MSBuild nodes, the compiler server, the MSBuild server).
  export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0 UseSharedCompilation=false
fi

solution=TcpFreeze.sln
[[ -f $solution ]] || solution=TcpFreeze.slnx
results=artifacts/test-results
rm -rf "$results"   # count only this run's TRX files

# Every test project of the solution (IsTestProject), each with a TRX file named after it: with one
# LogFileName for all, `dotnet test` on the solution lets the last project overwrite the others' TRX
# ("WARNING: Overwriting results file"), and LogFilePrefix names files by the second, which two projects
# can share.
mapfile -t projects < <(dotnet sln "$solution" list | grep -E '\.csproj$' | while read -r p; do
  grep -q '<IsTestProject>true</IsTestProject>' "$p" && echo "$p"; done)
echo "[test] test projects: ${projects[*]}"

# A bound below CI's 90 minutes for the build and all projects together, so that a hung test still ends
# with a summary line.
bound=${TCPFREEZE_TEST_TIMEOUT:-80m}
case $bound in
  *s) bound_s=${bound%s} ;; *m) bound_s=$((${bound%m} * 60)) ;; *h) bound_s=$((${bound%h} * 3600)) ;; *) bound_s=$bound ;;
esac
started=$SECONDS
rc=0
left() { echo $((bound_s - (SECONDS - started) > 1 ? bound_s - (SECONDS - started) : 1)); }
timeout --kill-after=60 "$(left)" dotnet build "$solution" -c Release </dev/null || rc=$?
[[ $rc -ne 0 ]] && echo "[test] dotnet build exited $rc: no test is run"
built=$rc
missing=0
for project in "${projects[@]}"; do
  [[ $built -ne 0 || $rc -eq 124 || $rc -eq 137 ]] && break   # a failed build, or the bound reached
  name=$(basename "$project" .csproj)
  prc=0
  timeout --kill-after=60 "$(left)" \
    dotnet test "$project" -c Release --no-build \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" \
      --results-directory "$results" </dev/null || prc=$?
  echo "[test] $name: dotnet test exited $prc"
  [[ -f $results/$name.trx ]] || { echo "[test] $name wrote no $results/$name.trx"; missing=1; }
  [[ $rc -eq 0 ]] && rc=$prc
done
echo "[test] build and tests exited $rc after $((SECONDS - started)) s"
[[ $rc -eq 124 || $rc -eq 137 ]] && echo "[test] the run hit the $bound bound and was stopped"
[[ $rc -eq 0 && $missing -ne 0 ]] && rc=1

counted=0
python3 - "$results" <<'PY' || counted=$?
import glob, os, sys
passed = failed = skipped = 0
files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.trx"), recursive=True))
import xml.etree.ElementTree as ET
for path in files:
    counters = next((e for e in ET.parse(path).iter() if e.tag.rsplit("}", 1)[-1] == "Counters"), None)
    if counters is None:
        print(f"[test] {path}: no Counters element", flush=True)
        continue
    n = lambda name: int(counters.get(name, "0"))
    passed += n("passed")
    failed += n("failed") + n("error") + n("timeout") + n("aborted")
    skipped += n("notExecuted")
    print(f"[test] {path}: total {n('total')}, executed {n('executed')}, passed {n('passed')}, "
          f"failed {n('failed')}, notExecuted {n('notExecuted')}", flush=True)
    # The failed tests again, each with the start of its message, so that a log cut to its tail still names them.
    for result in (e for e in ET.parse(path).iter() if e.tag.rsplit("}", 1)[-1] == "UnitTestResult"):
        if result.get("outcome") not in ("Failed", "Error", "Timeout", "Aborted"):
            continue
        text = next((e.text or "" for e in result.iter() if e.tag.rsplit("}", 1)[-1] == "Message"), "")
        lines = [line.rstrip() for line in text.splitlines() if line.strip()][:12]
        print(f"[test] FAILED {result.get('testName')} ({result.get('duration')})", flush=True)
        for line in lines:
            print(f"[test]     {line[:300]}", flush=True)
if not files:
    print(f"[test] no TRX file under {sys.argv[1]}", flush=True)
if passed + failed == 0:
    print("[test] no test was executed", flush=True)
print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
sys.exit(1 if passed + failed == 0 or failed else 0)
PY

if [[ $rc -ne 0 ]]; then exit "$rc"; fi
exit "$counted"
