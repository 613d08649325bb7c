#!/bin/sh
# shellcheck disable=SC3043 # `local`: dash, bash and busybox sh have it; Debian Policy 10.4 allows it.
# Clean Debian bookworm roots (debootstrap --variant=minbase) for the package install test, one per
# architecture: built once, kept as a tarball in the cache, and extracted fresh for every run, so every
# install starts from the same clean system and no run sees what an earlier one left behind.
#
# A shell script rather than TypeScript: every step is a system tool (debootstrap, tar, mount, chroot,
# update-binfmts) run as root, and a `trap` is what guarantees the unmount when a run is interrupted.
#
#   debian-root.sh ensure ARCH      build the cached root of ARCH if it is missing; prints its path
#   debian-root.sh fresh ARCH DIR   extract a fresh copy into DIR (a new or empty directory)
#   debian-root.sh mount DIR        mount /proc, /sys, /dev and /dev/pts into DIR
#   debian-root.sh umount DIR       unmount everything under DIR (stops what still runs inside it)
#   debian-root.sh remove DIR       unmount, then delete DIR (never crosses into a mounted file system)
#   debian-root.sh binfmt ARCH      make sure foreign binaries of ARCH run here (qemu-user-static)
#
# Environment: GREENWAVE_CACHE_DIR (default ~/.cache/greenwave; roots in $GREENWAVE_CACHE_DIR/roots),
# GREENWAVE_DEBIAN_MIRROR (default: the bookworm URI of /etc/apt/sources.list.d/debian.sources).
set -eu

SUITE=bookworm
CACHE_DIR="${GREENWAVE_CACHE_DIR:-${HOME:-/root}/.cache/greenwave}"
ROOTS="$CACHE_DIR/roots"
SOURCES=/etc/apt/sources.list.d/debian.sources

die() {
  echo "debian-root: $*" >&2
  exit 1
}

say() { echo "debian-root: $*" >&2; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mount need it): sudo -E $0 $*"
}

need_tool() { # tool, package
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install $2"
}

check_arch() {
  case "$1" in
    amd64 | arm64) ;;
    *) die "unknown architecture \"$1\": give amd64 or arm64" ;;
  esac
}

# The Debian mirror this machine's apt uses (the stanza that carries bookworm, not the security one).
mirror() {
  if [ -n "${GREENWAVE_DEBIAN_MIRROR:-}" ]; then
    echo "$GREENWAVE_DEBIAN_MIRROR"
    return
  fi
  local found=""
  if [ -r "$SOURCES" ]; then
    # deb822 stanzas are paragraphs: take the URIs of the first one whose Suites lists bookworm itself.
    found=$(awk -v suite="$SUITE" 'BEGIN { RS = "" } {
      n = split($0, line, "\n"); uri = ""; ok = 0
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^URIs:/) { split(line[i], w, /[ \t]+/); uri = w[2] }
        if (line[i] ~ /^Suites:/) { m = split(line[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) ok = 1 }
      }
      if (ok && uri != "") { print uri; exit } }' "$SOURCES")
  fi
  echo "${found:-http://deb.debian.org/debian}"
}

host_arch() { dpkg --print-architecture; }

# Foreign binaries run through qemu-user-static's binfmt_misc handler. Its "F" flag makes the kernel
# open the interpreter once, at registration, so it works inside a chroot without a copy there.
binfmt() {
  local arch="$1" dir=/proc/sys/fs/binfmt_misc
  [ "$arch" = "$(host_arch)" ] && return 0
  [ "$arch" = arm64 ] || die "no emulation set up for $arch on a $(host_arch) host"
  need_tool qemu-aarch64-static qemu-user-static
  if [ ! -e "$dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null ||
      die "cannot mount binfmt_misc on $dir: the kernel lacks CONFIG_BINFMT_MISC, or this is a container without the right to mount it (register qemu-aarch64 on the host: apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64)"
  fi
  if ! grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null; then
    if command -v update-binfmts >/dev/null 2>&1; then
      update-binfmts --enable qemu-aarch64 >&2 || true
    fi
  fi
  if ! grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null; then
    # No binfmt-support: register qemu's aarch64 ELF magic directly, with the F flag.
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$(command -v qemu-aarch64-static)"':F' \
      >"$dir/register" 2>/dev/null ||
      die "cannot register the qemu-aarch64 handler in $dir/register (read-only binfmt_misc, as in most containers): register it on the host (update-binfmts --enable qemu-aarch64)"
  fi
  grep -qx enabled "$dir/status" || die "binfmt_misc is disabled on this machine: echo 1 > $dir/status"
  grep -qx enabled "$dir/qemu-aarch64" || die "the qemu-aarch64 binfmt handler is registered but disabled: update-binfmts --enable qemu-aarch64"
}

# The interpreter a root of ARCH needs copied inside: none with the F flag (see binfmt).
interpreter_to_copy() {
  local arch="$1" entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  [ "$arch" = "$(host_arch)" ] && return 0
  grep -q '^flags:.*F' "$entry" && return 0
  sed -n 's/^interpreter //p' "$entry"
}

mounts_under() { # mount points at or below DIR, deepest first
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# Stops whatever still runs inside the root (the test's own chrooted processes: their root is DIR).
kill_inside() {
  local p pid
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] || continue
    pid=${p#/proc/}
    say "stopping pid $pid, still running inside $1: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

unmount_all() {
  local dir m
  dir=$(readlink -f "$1")
  [ -z "$(mounts_under "$dir")" ] && return 0
  kill_inside "$dir"
  for m in $(mounts_under "$dir"); do
    umount "$m" 2>/dev/null || { sleep 0.5; umount "$m" 2>/dev/null; } || umount -l "$m" ||
      say "could not unmount $m"
  done
  [ -z "$(mounts_under "$dir")" ] || die "still mounted under $dir: $(mounts_under "$dir" | tr '\n' ' ')"
}

remove() {
  local dir
  dir=$(readlink -f "$1")
  [ -d "$dir" ] || return 0
  unmount_all "$dir"
  # --one-file-system: even if a mount survived, rm never descends into the host's /dev or /proc.
  rm -rf --one-file-system "$dir"
}

mount_into() {
  local dir
  dir=$(readlink -f "$1")
  [ -x "$dir/bin/sh" ] || die "$dir is not a root file system (no bin/sh)"
  mkdir -p "$dir/proc" "$dir/sys" "$dir/dev"
  mount -t proc proc "$dir/proc"
  mount -t sysfs sysfs "$dir/sys"
  # The host's /dev: the device nodes a process expects, and /dev/pts for pseudo-terminals.
  mount --bind /dev "$dir/dev"
  if mountpoint -q /dev/pts; then mount --bind /dev/pts "$dir/dev/pts"; fi
}

create() {
  local arch="$1" tarball="$ROOTS/$1.tar" build url started took interp
  need_tool debootstrap debootstrap
  mkdir -p "$ROOTS"
  build=$(mktemp -d "$ROOTS/$arch.build.XXXXXX")
  # Whatever happens, the half-built root goes (second stage mounts /proc and /sys inside it). The
  # paths are expanded now: the trap may run after this function's locals are gone.
  # Signals are ignored while it cleans up (a second Ctrl-C must not leave half of it).
  # shellcheck disable=SC2064 # expanded now, on purpose (see above)
  trap "trap '' INT TERM HUP; remove '$build'; rm -f '$tarball.part'" EXIT
  trap 'exit 130' INT TERM
  url=$(mirror)
  started=$(now_ms)
  say "creating a $SUITE minbase root for $arch from $url (once; cached as $tarball)"
  if [ "$arch" = "$(host_arch)" ]; then
    debootstrap --variant=minbase --arch="$arch" "$SUITE" "$build" "$url" >&2 ||
      die "debootstrap failed for $arch (log: $build/debootstrap/debootstrap.log)"
  else
    binfmt "$arch"
    debootstrap --variant=minbase --arch="$arch" --foreign "$SUITE" "$build" "$url" >&2 ||
      die "debootstrap (first stage) failed for $arch"
    interp=$(interpreter_to_copy "$arch")
    if [ -n "$interp" ]; then
      mkdir -p "$build$(dirname "$interp")"
      cp "$interp" "$build$interp"
    fi
    chroot "$build" /debootstrap/debootstrap --second-stage >&2 ||
      die "debootstrap second stage (under qemu) failed for $arch: see $build/debootstrap/debootstrap.log"
    if [ -n "$interp" ]; then rm -f "$build$interp"; fi
  fi
  unmount_all "$build"
  # Downloaded .debs are not part of a clean system.
  rm -f "$build"/var/cache/apt/archives/*.deb
  # mktemp made the directory 0700: as "/" of the root it would lock every other user out.
  chmod 0755 "$build"
  tar --numeric-owner -cpf "$tarball.part" -C "$build" .
  mv "$tarball.part" "$tarball"
  took=$(($(now_ms) - started))
  printf 'seconds=%s.%03d mirror=%s created=%s\n' $((took / 1000)) $((took % 1000)) "$url" "$(date -u +%FT%TZ)" \
    >"$ROOTS/$arch.created"
  say "root for $arch created in $((took / 1000)).$((took % 1000 / 100)) s ($(du -h "$tarball" | cut -f1))"
  remove "$build"
  trap - EXIT INT TERM
}

ensure() {
  local arch="$1"
  mkdir -p "$ROOTS"
  # One builder per arch at a time; a second caller waits and then finds the tarball.
  exec 9>"$ROOTS/$arch.lock"
  flock 9
  if [ ! -s "$ROOTS/$arch.tar" ]; then create "$arch"; fi
  exec 9>&-
  echo "$ROOTS/$arch.tar"
}

fresh() {
  local arch="$1" dir="$2" tarball interp
  tarball=$(ensure "$arch")
  binfmt "$arch"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty: a fresh root needs a new or empty directory"
  tar --numeric-owner -xpf "$tarball" -C "$dir"
  chmod 0755 "$dir" # "/" of the root: a mktemp directory (0700) would lock every other user out
  interp=$(interpreter_to_copy "$arch")
  if [ -n "$interp" ]; then
    mkdir -p "$dir$(dirname "$interp")"
    cp "$interp" "$dir$interp"
  fi
}

[ $# -ge 1 ] || die "usage: $0 ensure ARCH | fresh ARCH DIR | mount DIR | umount DIR | remove DIR | binfmt ARCH"
command="$1"
shift
case "$command" in
  ensure)
    [ $# -eq 1 ] || die "usage: $0 ensure ARCH"
    check_arch "$1"
    need_root ensure "$@"
    ensure "$1"
    ;;
  fresh)
    [ $# -eq 2 ] || die "usage: $0 fresh ARCH DIR"
    check_arch "$1"
    need_root fresh "$@"
    fresh "$1" "$2"
    ;;
  mount)
    [ $# -eq 1 ] || die "usage: $0 mount DIR"
    need_root mount "$@"
    mount_into "$1"
    ;;
  umount)
    [ $# -eq 1 ] || die "usage: $0 umount DIR"
    need_root umount "$@"
    unmount_all "$1"
    ;;
  remove)
    [ $# -eq 1 ] || die "usage: $0 remove DIR"
    need_root remove "$@"
    remove "$1"
    ;;
  binfmt)
    [ $# -eq 1 ] || die "usage: $0 binfmt ARCH"
    check_arch "$1"
    need_root binfmt "$@"
    binfmt "$1"
    ;;
  *) die "unknown command \"$command\": ensure, fresh, mount, umount, remove or binfmt" ;;
esac
