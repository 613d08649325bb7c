/**
 * A suggestion for a time zone name the runtime does not know: the known zone it was most likely
 * meant to be (another spelling, the city alone, a typo of one or two letters), or none.
 */
export function zoneHint(name: string): string {
  const lower = name.toLowerCase();
  const city = `/${lower.split("/").pop() ?? ""}`;
  const zones = Intl.supportedValuesOf("timeZone");
  const match =
    zones.find((zone) => zone.toLowerCase() === lower) ??
    zones.find((zone) => zone.toLowerCase().endsWith(city)) ??
    closest(lower, zones);
  return match === undefined ? "" : ` (did you mean ${match}?)`;
}

/** The zone within two edits of the name (case aside), the nearest first; none if several tie or none is. */
function closest(lower: string, zones: readonly string[]): string | undefined {
  const LIMIT = 3;
  let best: string | undefined;
  let bestDistance = LIMIT;
  let tie = false;
  for (const zone of zones) {
    const d = editDistance(lower, zone.toLowerCase(), LIMIT);
    if (d < bestDistance) [best, bestDistance, tie] = [zone, d, false];
    else if (d === bestDistance && d < LIMIT) tie = true;
  }
  return tie ? undefined : best;
}

/** Levenshtein distance, or `limit` as soon as it is sure to be at least that (names are short). */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + cost));
    }
    if (Math.min(...row) >= limit) return limit;
    previous = row;
  }
  return Math.min(previous[b.length] as number, limit);
}
