#!/bin/sh
# Builds the package of one architecture, installs it into a fresh clean Debian bookworm root and runs
# the installed gateway against the installed simulator there (test/package/installed-package.test.ts).
#
#   npm run package:check                        amd64: what CI runs
#   npm run package:verify -- --arch arm64       arm64 under qemu-user-static (slow; not in CI)
#   packaging/verify/verify.sh --arch ARCH [--deb FILE | --no-build]
#
# --deb FILE tests that package instead of building one; --no-build tests the newest
# dist-package/greenwave_*_ARCH.deb. Needs root (debootstrap, chroot, mount). The root is built once per
# architecture and cached (see debian-root.sh); each run extracts a fresh copy and removes it at the end,
# unmounted, whatever happened. Figures go to dist-package/verify-ARCH.json.
set -eu
cd "$(dirname "$0")/../.."
ROOTS_TOOL=packaging/verify/debian-root.sh

die() {
  echo "package verify: $*" >&2
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

ARCH=amd64
DEB=""
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      [ $# -ge 2 ] || die "--arch needs amd64 or arm64"
      ARCH="$2"
      shift 2
      ;;
    --arch=*)
      ARCH="${1#--arch=}"
      shift
      ;;
    --deb)
      [ $# -ge 2 ] || die "--deb needs a file"
      DEB="$2"
      BUILD=0
      shift 2
      ;;
    --no-build)
      BUILD=0
      shift
      ;;
    *) die "unknown option \"$1\" (usage: $0 --arch amd64|arm64 [--deb FILE | --no-build])" ;;
  esac
done
case "$ARCH" in amd64 | arm64) ;; *) die "unknown architecture \"$ARCH\": give --arch amd64 or --arch arm64" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (the test installs into a chroot and mounts /proc and /dev there): sudo -E npm run package:check"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: apt-get install debootstrap"
if [ "$ARCH" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
  command -v qemu-aarch64-static >/dev/null 2>&1 || die "qemu-aarch64-static is missing: apt-get install qemu-user-static binfmt-support"
fi

build_ms=""
if [ "$BUILD" = 1 ]; then
  began=$(now_ms)
  npm run package -- --arch "$ARCH"
  build_ms=$(($(now_ms) - began))
fi
if [ -z "$DEB" ]; then
  # shellcheck disable=SC2012 # names are ours: greenwave_<version>_<arch>.deb
  DEB=$(ls -t dist-package/greenwave_*_"$ARCH".deb 2>/dev/null | head -n 1)
  [ -n "$DEB" ] || die "no dist-package/greenwave_*_$ARCH.deb: build it with npm run package -- --arch $ARCH"
fi
[ -f "$DEB" ] || die "$DEB does not exist"
DEB=$(readlink -f "$DEB")

began=$(now_ms)
sh "$ROOTS_TOOL" ensure "$ARCH" >/dev/null
root_ms=$(($(now_ms) - began))

ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/greenwave-root-$ARCH.XXXXXX")
# The fresh root goes at the end of every run, unmounted first (processes left inside are stopped).
# Signals are ignored meanwhile, by the cleanup and the commands it runs (they inherit it): a second
# Ctrl-C must not leave half a root behind.
cleanup() {
  trap '' INT TERM HUP
  sh "$ROOTS_TOOL" remove "$ROOT"
}
trap cleanup EXIT
trap 'echo "package verify: interrupted: removing $ROOT" >&2; exit 130' INT TERM HUP
began=$(now_ms)
sh "$ROOTS_TOOL" fresh "$ARCH" "$ROOT"
sh "$ROOTS_TOOL" mount "$ROOT"
fresh_ms=$(($(now_ms) - began))

mkdir -p dist-package
REPORT="$(pwd)/dist-package/verify-$ARCH.json"
rm -f "$REPORT"
began=$(now_ms)
status=0
GREENWAVE_VERIFY_ROOT="$ROOT" GREENWAVE_VERIFY_DEB="$DEB" GREENWAVE_VERIFY_ARCH="$ARCH" \
  GREENWAVE_VERIFY_REPORT="$REPORT" npx vitest run --config vitest.package.config.ts || status=$?
test_ms=$(($(now_ms) - began))

echo
echo "== package verify ($ARCH): $(basename "$DEB")"
[ -n "$build_ms" ] && echo "   package build             $(seconds "$build_ms")"
echo "   clean root (cache: $(sed -n 's/^seconds=\([0-9]*\).*/built once in \1 s/p' "${GREENWAVE_CACHE_DIR:-$HOME/.cache/greenwave}/roots/$ARCH.created" 2>/dev/null)) $(seconds "$root_ms")"
echo "   fresh copy + mounts       $(seconds "$fresh_ms")"
echo "   install test              $(seconds "$test_ms")"
[ -f "$REPORT" ] && echo "   figures ($REPORT):" && sed 's/^/     /' "$REPORT"
[ "$status" = 0 ] || die "the install test FAILED for $ARCH (exit $status): see above"
echo "== package verify ($ARCH): passed"
