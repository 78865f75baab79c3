#!/usr/bin/env bash
# Build tlgui.app for macOS: the Linux recipe's steps, with the macOS wheels (PyPI's torch
# for macOS has no CUDA: no separate index is needed) and an app bundle from the same spec.
# Not yet built and checked on a Mac: see packaging/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$here/build}"
rm -rf "$build"
mkdir -p "$build"
"${PYTHON:-python3}" -m venv "$build/venv"
"$build/venv/bin/pip" install "$root[onnx]" "pyinstaller>=6.10"
"$build/venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$build/dist" --workpath "$build/work" "$root/packaging/tlgui.spec"
echo "built $build/dist/tlgui.app; check it with:"
echo "  bash packaging/smoke_test.sh $build/dist/tlgui/tlgui"
