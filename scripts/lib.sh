# Shared by the scripts in this folder: paths, logging, and the wasm build environment.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:/usr/local/bin:$PATH"
# Written by scripts/setup: variables for the wasm build only (empty on the rustup path).
WASM_ENV_FILE="${WASM_ENV_FILE:-$HOME/.config/classchat/wasm-toolchain.env}"
say() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# Runs "$@" with the wasm build variables, in a subshell so they never reach native builds.
with_wasm_env() { ( set -a; [[ -f "$WASM_ENV_FILE" ]] && . "$WASM_ENV_FILE"; set +a; "$@" ); }
