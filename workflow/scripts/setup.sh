#!/usr/bin/env bash
# Sets up lavimo on a fresh Debian/Ubuntu machine with Python 3.11: system libraries (GL/X for Blender's
# bpy, ffmpeg; Slurm and munge for the local-cluster test), a virtual environment in .venv and the package with
# its pinned dependencies.
# Idempotent: a rerun only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

APT_PACKAGES=(libx11-6 libxext6 libxrender1 libxfixes3 libxi6 libxxf86vm1 libxkbcommon0 libsm6 libice6 libxt6
  libgl1 libglx0 libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 ffmpeg chromium chromium-driver
  slurmctld slurmd slurm-client munge)  # tests/test_slurm.py starts its own one-node Slurm from these
# The Slurm executor of workflow/profiles/slurm, installed without its dependencies: 2.6.x is the last line that
# accepts numpy<2 (bpy needs it; 2.7+ requires numpy>=2.4.5), and it pins pandas<3 only for its optional
# efficiency report. Every module it imports is already here (snakemake's interfaces, throttler).
SLURM_EXECUTOR=(snakemake-executor-plugin-slurm==2.6.1 snakemake-executor-plugin-slurm-jobstep==0.6.1)
PYTHON=${PYTHON:-python3.11}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! command -v "$PYTHON" >/dev/null; then
  missing+=(python3.11 python3.11-venv)
fi
if ((${#missing[@]})); then
  log "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.lavimo-installed
want=$( (cat pyproject.toml; echo "${SLURM_EXECUTOR[*]}") | sha256sum | cut -d' ' -f1)

# The package sources pip is configured with (find-links, extra indexes: local wheel folders on some machines),
# so that uv resolves from the same places; uv reads only its own settings.
pip_setting() {
  local env_name="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!env_name:-}" ]; then echo "${!env_name}"; else .venv/bin/python -m pip config get "global.$1" 2>/dev/null || true; fi
}
install_with_uv() {
  .venv/bin/python -m pip install -q uv || return 1
  local args=(--python .venv/bin/python --index-strategy unsafe-best-match) source
  for source in $(pip_setting find-links); do args+=(--find-links "$source"); done
  for source in $(pip_setting extra-index-url); do args+=(--extra-index-url "$source"); done
  local index; index=$(pip_setting index-url); [ -n "$index" ] && args+=(--index-url "$index")
  # --compile-bytecode, as pip does by default: where PYTHONDONTWRITEBYTECODE is set (it is on the development
  # machine), every job would otherwise recompile torch & co. at import, about 5 s of CPU per job
  .venv/bin/uv pip install -q "${args[@]}" --compile-bytecode "torch==2.14.1" "torchvision==0.29.1" -e ".[all]" &&
    .venv/bin/uv pip install -q "${args[@]}" --compile-bytecode --no-deps "${SLURM_EXECUTOR[@]}"
}
install_with_pip() {
  .venv/bin/python -m pip install -q --upgrade pip
  # torch/torchvision first and pinned, so no other package pulls a different build
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[all]"
  .venv/bin/python -m pip install -q --no-deps "${SLURM_EXECUTOR[@]}"
}

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing lavimo and its dependencies into .venv (torch with its CUDA libraries, bpy: 5.6 GB)"
  # uv unpacks the wheels in parallel: setup took 59 s to 1 min 18 s here, bytecode included (1 min 46 s on a
  # machine just booted), against 2 min 49 s with pip; pip is the fallback
  if ! install_with_uv; then
    log "uv could not install the environment; installing with pip (a few minutes)"
    install_with_pip
  fi
  echo "$want" > "$stamp"
fi
log "ready: $(.venv/bin/lavimo --version)"
