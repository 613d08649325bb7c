import { join, resolve } from "node:path";

/**
 * Where an installed gateway keeps its releases, state and configuration (the field contract's
 * layout), all under one root: "/" on a gateway, a temporary directory in the tests, so that nothing
 * here ever needs the real system.
 */
/** Where activation keeps the active and previous releases and their history, in the data directory. */
export const RELEASE_STATE_FILE = "release-state.json";

export interface InstallPaths {
  readonly root: string;
  /** /opt/greenwave */
  readonly opt: string;
  /** /opt/greenwave/releases: one directory per version. */
  readonly releases: string;
  /** /opt/greenwave/current → releases/<version>: what /usr/bin/greenwave runs. */
  readonly current: string;
  /** /opt/greenwave/previous → the release `current` replaced, kept for rollback. */
  readonly previous: string;
  /** /var/lib/greenwave: the data directory; a store per intersection in <id>/gateway.db. */
  readonly data: string;
  readonly backups: string;
  readonly stateFile: string;
  /** Held while an activation runs: two at once would switch the links under each other. */
  readonly lockFile: string;
  readonly config: string;
  readonly envFile: string;
  readonly passwordFile: string;
}

export function installPaths(root = "/"): InstallPaths {
  const base = resolve(root);
  const opt = join(base, "opt/greenwave");
  const data = join(base, "var/lib/greenwave");
  const etc = join(base, "etc/greenwave");
  return {
    root: base,
    opt,
    releases: join(opt, "releases"),
    current: join(opt, "current"),
    previous: join(opt, "previous"),
    data,
    backups: join(data, "backups"),
    stateFile: join(data, RELEASE_STATE_FILE),
    lockFile: join(data, "release.lock"),
    config: join(etc, "intersection.yaml"),
    envFile: join(etc, "gateway.env"),
    passwordFile: join(etc, "broker.secret"),
  };
}

export function releaseDir(paths: InstallPaths, version: string): string {
  return join(paths.releases, version);
}
