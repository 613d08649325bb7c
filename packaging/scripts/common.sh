# ---- packaging/scripts/common.sh: shared by the Debian package's postinst and the tarball's install.sh
# (the field contract's "Installed layout of a gateway"). POSIX sh; every step may run again.
GW_OPT=/opt/greenwave
GW_RELEASES=/opt/greenwave/releases
GW_STATE=/var/lib/greenwave
GW_ETC=/etc/greenwave
# Releases kept in /opt/greenwave/releases: current, previous and one more.
GW_KEEP_RELEASES=3

gw_say() { echo "greenwave: $*"; }
gw_die() {
  echo "greenwave: $*" >&2
  exit 1
}

# The service user greenwave (group greenwave, member of dialout for the serial ports), home
# /var/lib/greenwave, no login. systemd-sysusers reads the same file the boot reads; without systemd
# (a minimal Debian, a container) useradd/groupadd/usermod from passwd do it.
gw_create_user() { # sysusers.conf
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers "$1" || gw_say "systemd-sysusers $1 failed: creating the user with useradd"
  fi
  getent group dialout >/dev/null || groupadd --system dialout
  if ! getent passwd greenwave >/dev/null; then
    getent group greenwave >/dev/null || groupadd --system greenwave
    gw_nologin=/usr/sbin/nologin
    [ -x "$gw_nologin" ] || gw_nologin=/sbin/nologin
    [ -x "$gw_nologin" ] || gw_nologin=/bin/false
    useradd --system --gid greenwave --home-dir "$GW_STATE" --no-create-home --shell "$gw_nologin" \
      --comment "greenwave traffic-signal gateway" greenwave
  fi
  case " $(id -nG greenwave) " in
    *" dialout "*) ;;
    *) usermod -a -G dialout greenwave ;;
  esac
}

# State and secret: /var/lib/greenwave 0750 greenwave (and backups/), /etc/greenwave/broker.secret
# 0600 greenwave, created empty if missing (a password written into it is never overwritten).
gw_create_state() {
  install -d -m 0750 -o greenwave -g greenwave "$GW_STATE" "$GW_STATE/backups"
  install -d -m 0755 "$GW_ETC"
  if [ ! -e "$GW_ETC/broker.secret" ]; then
    install -m 0600 -o greenwave -g greenwave /dev/null "$GW_ETC/broker.secret"
  else
    chown greenwave:greenwave "$GW_ETC/broker.secret"
    chmod 0600 "$GW_ETC/broker.secret"
  fi
}

# Copies a release tree to /opt/greenwave/releases/<version>, built under a temporary name and renamed
# into place, so a release directory is always whole. "link": hard links (cp -al), for the package's
# tree in /usr/lib/greenwave/release: no extra space, and they outlive the next upgrade because dpkg
# replaces every file by renaming a new one over it, never by writing into the old inode; across file
# systems, a copy. "copy": a plain copy (the tarball's tree, which its owner may delete or change).
gw_install_release() { # source version link|copy
  gw_dest="$GW_RELEASES/$2"
  mkdir -p "$GW_RELEASES"
  rm -rf "$GW_RELEASES/.$2.new" "$GW_RELEASES/.$2.old"
  if [ "$3" = link ] && cp -al "$1" "$GW_RELEASES/.$2.new" 2>/dev/null; then
    :
  else
    rm -rf "$GW_RELEASES/.$2.new"
    cp -a "$1" "$GW_RELEASES/.$2.new"
  fi
  # The same version again (a reinstall): the new copy replaces the old one, which is renamed aside
  # first, so `current` names a whole release at every instant but one rename.
  if [ -e "$gw_dest" ]; then mv "$gw_dest" "$GW_RELEASES/.$2.old"; fi
  mv "$GW_RELEASES/.$2.new" "$gw_dest"
  rm -rf "$GW_RELEASES/.$2.old"
  gw_say "release $2 installed in $gw_dest"
}

# The release runs here (its Node is of this machine's architecture and loads) before anything
# switches to it.
gw_check_release() { # version
  gw_out=$("$GW_RELEASES/$1/bin/greenwave" --version 2>&1) ||
    gw_die "release $1 does not run on this machine ($(uname -m)): $gw_out. Nothing was switched: the current release stays."
  [ "$gw_out" = "$1" ] ||
    gw_die "release $1 says it is version \"$gw_out\": the release is damaged. Nothing was switched: the current release stays."
}

gw_has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# systemd rereads the unit (it may have changed with the release) before anything restarts it.
gw_daemon_reload() {
  if gw_has_systemd; then systemctl daemon-reload || gw_say "systemctl daemon-reload failed"; fi
}

# Points a link at a target, atomically: a new link renamed over the old one.
gw_link() { # target link
  ln -sfn "$1" "$2.new"
  mv -Tf "$2.new" "$2"
}

# Activation. A release that has `greenwave release activate` does it itself (the health-gated
# switch, with rollback). One that has not switches the links here: `previous` to what `current`
# named, `current` to the new release, then restarts the service if it runs (no health gate).
gw_activate() { # version
  gw_bin="$GW_RELEASES/$1/bin/greenwave"
  if "$gw_bin" --help 2>/dev/null | grep -Eq '^  release( |$)' &&
    "$gw_bin" release --help 2>/dev/null | grep -Eq '^  activate( |$)'; then
    gw_say "activating release $1: greenwave release activate $1"
    "$gw_bin" release activate "$1"
    return
  fi
  gw_say "release $1 has no \`greenwave release activate\`: switching the links without a health gate"
  gw_current=$(readlink "$GW_OPT/current" 2>/dev/null || true)
  if [ "$gw_current" = "releases/$1" ]; then
    gw_say "release $1 is already current"
  else
    if [ -n "$gw_current" ]; then gw_link "$gw_current" "$GW_OPT/previous"; fi
    gw_link "releases/$1" "$GW_OPT/current"
    gw_say "current -> releases/$1${gw_current:+, previous -> $gw_current}"
  fi
  if ! gw_has_systemd; then
    gw_say "no running systemd (a chroot or a container): the links are switched, nothing was started"
  elif systemctl is-active --quiet greenwave.service; then
    gw_say "restarting greenwave.service on release $1"
    systemctl restart greenwave.service
  else
    gw_say "greenwave.service is not running. Edit $GW_ETC/intersection.yaml, run \`greenwave doctor\`, then \`systemctl enable --now greenwave\`"
  fi
}

# Keeps at most GW_KEEP_RELEASES releases: always the ones `current` and `previous` name, then the
# newest others by version; removes the rest, and what an interrupted install left (.<version>.new).
gw_prune_releases() {
  [ -d "$GW_RELEASES" ] || return 0
  gw_current=$(readlink "$GW_OPT/current" 2>/dev/null || true)
  gw_previous=$(readlink "$GW_OPT/previous" 2>/dev/null || true)
  gw_kept=0
  [ -n "$gw_current" ] && gw_kept=$((gw_kept + 1))
  [ -n "$gw_previous" ] && [ "$gw_previous" != "$gw_current" ] && gw_kept=$((gw_kept + 1))
  for gw_dir in "$GW_RELEASES"/.*.new "$GW_RELEASES"/.*.old; do
    [ -e "$gw_dir" ] && rm -rf "$gw_dir"
  done
  # Version names hold no white space (letters, digits and . + ~ _ -): ls is safe here.
  # shellcheck disable=SC2012
  for gw_version in $(ls -1 "$GW_RELEASES" | sort -rV); do
    case "releases/$gw_version" in
      "$gw_current" | "$gw_previous") continue ;;
    esac
    if [ "$gw_kept" -lt "$GW_KEEP_RELEASES" ]; then
      gw_kept=$((gw_kept + 1))
    else
      gw_say "removing old release $gw_version"
      rm -rf "${GW_RELEASES:?}/$gw_version"
    fi
  done
}
# ---- end of common.sh
