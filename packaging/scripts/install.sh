#!/bin/sh
# install.sh of greenwave @VERSION@: installs this release tree on a system without dpkg, doing what
# the Debian package's maintainer scripts do. Run it as root from the unpacked tarball:
#   tar -xzf greenwave_@VERSION@_<arch>.tar.gz && sudo greenwave-@VERSION@/install.sh
# It never overwrites /etc/greenwave/intersection.yaml or gateway.env once they exist.
set -e

VERSION='@VERSION@'
HERE=$(dirname "$(readlink -f "$0")")

@COMMON@

[ "$(id -u)" = 0 ] || gw_die "install.sh must run as root (it creates a user and writes /opt, /etc and /var/lib): sudo $0"
if command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${Status}' greenwave 2>/dev/null | grep -q ' installed$'; then
  gw_die "the greenwave Debian package is installed here: upgrade it with dpkg -i greenwave_${VERSION}_<arch>.deb, not with install.sh"
fi
case "$(uname -m)" in
  x86_64) gw_machine=amd64 ;;
  aarch64 | arm64) gw_machine=arm64 ;;
  *) gw_machine=$(uname -m) ;;
esac
grep -q "\"arch\": \"$gw_machine\"" "$HERE/release.json" ||
  gw_die "this release is not for this machine ($(uname -m)): $(grep '"arch"' "$HERE/release.json" | tr -d ' ,')"

# System files in the local administrator's directories (no package manager tracks them).
install -D -m 0644 "$HERE/system/greenwave.service" /etc/systemd/system/greenwave.service
install -D -m 0644 "$HERE/system/sysusers.conf" /etc/sysusers.d/greenwave.conf
install -D -m 0644 "$HERE/system/tmpfiles.conf" /etc/tmpfiles.d/greenwave.conf
install -d -m 0755 "$GW_ETC"
for gw_file in intersection.yaml gateway.env; do
  if [ -e "$GW_ETC/$gw_file" ]; then
    gw_say "keeping your $GW_ETC/$gw_file (the example is $HERE/system/$gw_file)"
  else
    install -m 0644 "$HERE/system/$gw_file" "$GW_ETC/$gw_file"
  fi
done

gw_create_user /etc/sysusers.d/greenwave.conf
gw_create_state
if [ "$HERE" != "$GW_RELEASES/$VERSION" ]; then gw_install_release "$HERE" "$VERSION" copy; fi
ln -sfn /opt/greenwave/current/bin/greenwave /usr/bin/greenwave
gw_check_release "$VERSION"
gw_daemon_reload
gw_activate "$VERSION"
gw_prune_releases
