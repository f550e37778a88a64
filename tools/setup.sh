#!/usr/bin/env bash
# Idempotent bootstrap for a fresh Debian machine (run as root, or as a user
# with sudo): installs Bazel (Debian's bazel-bootstrap) if missing, creates the
# repo-local virtualenv ./.venv and installs the pinned requirements.txt into it.
# Safe to re-run: pip is skipped while requirements.txt is unchanged.
set -euo pipefail

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${repo_root}"

log() { echo "[setup] $*"; }

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "[setup] need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [[ "${apt_updated}" -eq 0 ]]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    apt_updated=1
  fi
  log "apt-get install -y $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# 1. Bazel.
if command -v bazel >/dev/null 2>&1; then
  log "bazel found: $(command -v bazel)"
else
  log "bazel not found; installing Debian package bazel-bootstrap"
  apt_install bazel-bootstrap
fi

# 2. Python 3 with venv support.
if ! command -v python3 >/dev/null 2>&1; then
  log "python3 not found; installing"
  apt_install python3 python3-venv
fi

venv="${repo_root}/.venv"
if [[ -x "${venv}/bin/python3" ]] && "${venv}/bin/python3" -m pip --version >/dev/null 2>&1; then
  log "virtualenv exists: ${venv}"
else
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "python3 lacks venv/ensurepip; installing python3-venv"
    apt_install python3-venv
  fi
  log "creating virtualenv ${venv} with $(command -v python3) ($(python3 --version 2>&1))"
  rm -rf "${venv}"
  python3 -m venv "${venv}"
fi

# 3. Pinned requirements (skipped while requirements.txt is unchanged).
stamp="${venv}/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
have="$(cat "${stamp}" 2>/dev/null || true)"
if [[ "${want}" == "${have}" ]]; then
  log "requirements.txt unchanged since last install (sha256 ${want:0:12}); skipping pip"
else
  log "installing requirements.txt into ${venv}"
  "${venv}/bin/python3" -m pip install --progress-bar off -r requirements.txt
  echo "${want}" > "${stamp}"
  log "wrote ${stamp}"
fi

log "done. Python: $("${venv}/bin/python3" --version 2>&1), bazel: $(command -v bazel)"
