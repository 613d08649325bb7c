#!/bin/sh
# bin/greenwave of a release: runs the release's own Node on the release's compiled gateway, whatever
# Node the machine has (Debian bookworm's 18 is too old) or none at all.
# /usr/bin/greenwave -> /opt/greenwave/current/bin/greenwave -> releases/<version>/bin/greenwave:
# readlink -f resolves the whole chain, so each start runs the release `current` names at that moment.
R=$(dirname "$(dirname "$(readlink -f "$0")")")
exec "$R/node/bin/node" "$R/app/dist/gateway/cli/main.js" "$@"
