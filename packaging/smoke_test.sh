#!/usr/bin/env bash
# Check a built tlgui: its version, a tiny training on the command line, and the window
# started offscreen on the sample data, which quits by itself once it is ready (PyTorch
# loaded, the images scanned). Prints how long each took; any failure ends it non-zero.
#   bash packaging/smoke_test.sh packaging/linux/build/dist/tlgui/tlgui
set -euo pipefail
app="${1:?usage: smoke_test.sh PATH_TO_BUILT_TLGUI}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export TLGUI_CACHE_DIR="$scratch/cache" TORCH_HOME="$scratch/torch" HOME="$scratch/home"
export TLGUI_FEATURE_STORE_DIR="$scratch/features" QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME"
exec 3>&1  # the timings go here, whatever a command's own output is sent to

timed() {  # timed LABEL COMMAND...: run it, print its seconds
    local label="$1"; shift
    local started ended
    started=$(date +%s%N)
    "$@"
    ended=$(date +%s%N)
    local tenths=$(( (ended - started) / 100000000 ))
    printf '%s: %d.%d s\n' "$label" $((tenths / 10)) $((tenths % 10)) >&3
}

timed "version" "$app" --version
timed "training on the command line" timeout 600 "$app" train --sample --model resnet18 \
    --weights none --image-size 32 --epochs 1 --workers 1 --out "$scratch/run" >/dev/null 2>&1
test -f "$scratch/run/model/best.pt"
timed "window ready (first start)" env TLGUI_SMOKE_TEST=1 timeout 300 "$app" --sample \
    >"$scratch/ready.txt" 2>/dev/null
out="$(cat "$scratch/ready.txt")"
echo "$out" | grep -q "^tlgui ready: 320 images in 4 classes" || {
    echo "the window did not get ready: $out" >&2; exit 1; }
timed "window ready (again, caches warm)" env TLGUI_SMOKE_TEST=1 timeout 300 "$app" --sample \
    >/dev/null 2>&1
echo "smoke test passed: $out"
