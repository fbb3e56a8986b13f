#!/usr/bin/env bash
# pairlab's two commands. Each does all the set-up a fresh machine needs, then acts:
#   ./pairlab.sh app    create .venv if missing, install requirements.txt, start the lab at http://127.0.0.1:7860
#   ./pairlab.sh test   the same set-up plus Chromium for the browser tests and SLURM for the cluster tests, then the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
VENV="${PAIRLAB_VENV:-.venv}"

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "pairlab: creating the virtual environment in $VENV"
    python3 -m venv "$VENV"
  fi
  local want have
  want="$(sha1sum requirements.txt | cut -d' ' -f1)"
  have="$(cat "$VENV/.requirements.sha1" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    echo "pairlab: installing requirements (first time: a few minutes)"
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    echo "$want" > "$VENV/.requirements.sha1"
  fi
}

setup_browser() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if [ "$(id -u)" = "0" ]; then
    echo "pairlab: installing Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "pairlab: /usr/bin/chromium is missing; run 'sudo apt-get install chromium chromium-driver' for the browser tests" >&2
  fi
}

setup_slurm() {
  # a real single-node SLURM for tests/test_slurm.py (skipped with the reason when it cannot be installed)
  if command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ]; then return 0; fi
  if [ "$(id -u)" = "0" ]; then
    echo "pairlab: installing slurm-wlm and munge for the SLURM tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } \
      || echo "pairlab: could not install slurm-wlm; the SLURM tests will be skipped" >&2
  else
    echo "pairlab: SLURM is missing; 'sudo apt-get install slurm-wlm munge' runs the SLURM tests" >&2
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  app)
    setup_python
    exec "$VENV/bin/python" lab_app.py "$@"
    ;;
  test)
    setup_python
    setup_browser
    setup_slurm
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./pairlab.sh app [--port N] | ./pairlab.sh test [pytest args]" >&2
    exit 2
    ;;
esac
