#!/usr/bin/env bash
# Installs the Debian packages pyrender needs to render offscreen through EGL
# (Mesa's llvmpipe on machines without a GPU). Does nothing when they are
# present; prints the command to run when they are missing and we are not root.
set -euo pipefail
packages=(libegl1 libegl-mesa0 libgl1-mesa-dri)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "Offscreen rendering needs: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
fi
