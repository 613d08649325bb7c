export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  readonly median: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
  readonly extra?: Record<string, number | string>;
}

export function summarize(
  name: string,
  unit: string,
  values: number[],
  extra?: BenchResult["extra"],
): BenchResult {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return {
    name,
    unit,
    median: at(0.5),
    p99: at(0.99),
    max: sorted.at(-1) as number,
    samples: values.length,
    ...(extra ? { extra } : {}),
  };
}

export const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
