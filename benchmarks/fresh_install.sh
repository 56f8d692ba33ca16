#!/usr/bin/env bash
# The README's two set-up commands as a new user runs them, on each Python: a fresh clone of HEAD,
# a fresh virtual environment, `pip install -e ".[test]"` (timed; the venv's size), then
# `pytest tests/` with a fresh HOME and an empty test JAX cache (timed; its summary line). Last,
# on the first Python, what adding TensorFlow would cost (`pip install tensorflow-cpu`).
#
#   bash benchmarks/fresh_install.sh [python3.11 python3.12 python3.13]
#
# Writes docs/benchmarks/fresh_install_<version>.log and docs/benchmarks/fresh_install_tensorflow.log.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pythons=("$@")
[ ${#pythons[@]} -gt 0 ] || pythons=(python3.11 python3.12 python3.13)
scratch="$(mktemp -d)"
git clone --quiet "$root" "$scratch/clone"
[ -d "$root/../shared" ] && ln -s "$(cd "$root/../shared" && pwd)" "$scratch/shared"
commit="$(git -C "$scratch/clone" rev-parse --short HEAD)"
for python in "${pythons[@]}"; do
  version="$("$python" -c 'import platform; print(platform.python_version())')" || continue
  log="$root/docs/benchmarks/fresh_install_${version%.*}.log"
  venv="$scratch/venv-$version"
  {
    echo "commit $commit, Python $version, $(date -u +%Y-%m-%d), $(nproc) cores"
    start=$(date +%s)
    "$python" -m venv "$venv" && "$venv/bin/python" -m pip install --quiet \
      --disable-pip-version-check -e "$scratch/clone[test]" 2>&1 | grep -v "is ignored"
    echo "install: exit ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s, venv $(du -sh "$venv" | cut -f1)"
    "$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
      | grep -Ei '^(jax|jaxlib|flax|optax|orbax-checkpoint|tensorflow-datasets|numpy|pytest) '
    start=$(date +%s)
    (cd "$scratch/clone" && HOME="$scratch/home-$version" JAX_PLATFORMS=cpu \
      JAXCOLOR_TEST_JAX_CACHE="$scratch/jax-cache-$version" PATH="$venv/bin:$PATH" \
      pytest tests/ -q -p no:cacheprovider 2>&1 | tail -n 15)
    echo "tests: $(( $(date +%s) - start )) s"
  } > "$log" 2>&1
  echo "wrote $log"
done
first="$scratch/venv-$("${pythons[0]}" -c 'import platform; print(platform.python_version())')"
log="$root/docs/benchmarks/fresh_install_tensorflow.log"
{
  before=$(du -sm "$first" | cut -f1)
  start=$(date +%s)
  "$first/bin/python" -m pip install --quiet --disable-pip-version-check tensorflow-cpu 2>&1 \
    | grep -v "is ignored"
  echo "pip install tensorflow-cpu into the ${pythons[0]} venv: $(( $(date +%s) - start )) s," \
    "+$(( $(du -sm "$first" | cut -f1) - before )) MB"
  "$first/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -Ei '^tensorflow'
} > "$log" 2>&1
echo "wrote $log"
rm -rf "$scratch"
