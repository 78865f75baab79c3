#!/usr/bin/env bash
# Build a self-contained tlgui for Linux: dist/tlgui/ (one folder: run dist/tlgui/tlgui),
# with its desktop entry and icon, in packaging/linux/build/ (or $BUILD_DIR).
#
# PyTorch comes from its CPU-only wheels unless TORCH_INDEX_URL says otherwise: the default
# PyPI wheels bring about 3 GB of CUDA libraries a computer without an NVIDIA GPU never uses.
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 bash packaging/linux/build.sh
# An empty TORCH_INDEX_URL takes torch from pip's usual indexes; TORCH_PACKAGES pins versions
# (a mirror's CPU wheels, say: TORCH_PACKAGES="torch==2.13.0+cpu torchvision==0.28.0").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$here/build}"
python="${PYTHON:-python3}"
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
torch_packages="${TORCH_PACKAGES:-torch torchvision}"

rm -rf "$build"
mkdir -p "$build"
"$python" -m venv "$build/venv"
pip="$build/venv/bin/pip"
# torch first, from the CPU-only index: tlgui's own install then finds it satisfied.
if [ -n "$torch_index" ]; then
    # shellcheck disable=SC2086
    "$pip" install --index-url "$torch_index" $torch_packages
else
    # shellcheck disable=SC2086
    "$pip" install $torch_packages
fi
"$pip" install "$root[onnx]" "pyinstaller>=6.10"
"$build/venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$build/dist" --workpath "$build/work" "$root/packaging/tlgui.spec"

# The desktop entry and icon, with the folder's path in Exec (install them with
# `xdg-desktop-menu install` and `xdg-icon-resource install`, or copy them to
# ~/.local/share/applications and ~/.local/share/icons).
cp "$root/resources/tlgui.svg" "$build/dist/tlgui/tlgui.svg"
sed -e "s|^Exec=.*|Exec=$build/dist/tlgui/tlgui|" -e "s|^Icon=.*|Icon=$build/dist/tlgui/tlgui.svg|" \
    "$root/resources/tlgui.desktop" > "$build/dist/tlgui/tlgui.desktop"
du -sh "$build/dist/tlgui"
echo "built $build/dist/tlgui/tlgui; check it with: bash packaging/smoke_test.sh $build/dist/tlgui/tlgui"
