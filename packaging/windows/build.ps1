# Build tlgui for Windows: dist\tlgui\tlgui.exe (one folder), the Linux recipe's steps.
# PyTorch comes from its CPU-only wheels unless $env:TORCH_INDEX_URL says otherwise.
# Not yet built and checked on Windows: see packaging\README.md.
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$root = Resolve-Path "$here\..\.."
$build = if ($env:BUILD_DIR) { $env:BUILD_DIR } else { "$here\build" }
$index = if ($null -ne $env:TORCH_INDEX_URL) { $env:TORCH_INDEX_URL } else { "https://download.pytorch.org/whl/cpu" }
if (Test-Path $build) { Remove-Item -Recurse -Force $build }
New-Item -ItemType Directory -Force $build | Out-Null
py -3 -m venv "$build\venv"
$pip = "$build\venv\Scripts\pip.exe"
if ($index) { & $pip install --index-url $index torch torchvision } else { & $pip install torch torchvision }
& $pip install "$root[onnx]" "pyinstaller>=6.10"
& "$build\venv\Scripts\pyinstaller.exe" --noconfirm --clean --log-level WARN `
    --distpath "$build\dist" --workpath "$build\work" "$root\packaging\tlgui.spec"
Write-Output "built $build\dist\tlgui\tlgui.exe"
