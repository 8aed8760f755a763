#!/usr/bin/env sh
# Prints the path of a Python that TFX 1.16 accepts (3.10 or 3.9): $PYTHON if set, then
# python3.10/python3.9 on PATH, then pyenv's installed versions, then the active conda env.
# Exits 1 with instructions when there is none.
accepts() { "$1" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 10)))' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
  if accepts "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "PYTHON=$PYTHON is not a Python 3.9 or 3.10, which TFX 1.16 needs." >&2; exit 1
fi
for candidate in python3.10 python3.9; do
  if command -v "$candidate" >/dev/null 2>&1 && accepts "$candidate"; then
    command -v "$candidate"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(10|9)\.[0-9]+$' | sort -rV); do
    path=$(PYENV_VERSION="$version" pyenv which python 2>/dev/null)
    if [ -n "$path" ] && accepts "$path"; then echo "$path"; exit 0; fi
  done
fi
if [ -n "${CONDA_PREFIX:-}" ] && accepts "$CONDA_PREFIX/bin/python"; then
  echo "$CONDA_PREFIX/bin/python"; exit 0
fi
cat >&2 <<'MSG'
No Python 3.9 or 3.10 found; TFX 1.16 supports only those.
Install one, e.g. `pyenv install 3.10.13`, `apt-get install python3.10 python3.10-venv`,
or `conda create -n recsys python=3.10`, then run make again (or pass PYTHON=/path/to/python3.10).
MSG
exit 1
