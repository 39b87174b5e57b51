// Parses a /metrics body with a real exposition parser (prom2javascript), plus the checks Prometheus adds.

import { Readable } from "node:stream";
import { getMetricsFromStream, type PromData, type PromHistogramData, type PromMetrics } from "prom2javascript";

/**
 * The families of `text`. The parser rejects any line outside the text format; on top of it,
 * a family's TYPE may appear once, and the same series twice is an error, as Prometheus has it.
 */
export async function parseExposition(text: string): Promise<PromMetrics> {
  const typed = new Set<string>();
  const series = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) /.exec(line);
    if (t) {
      if (typed.has(t[1])) throw new Error(`TYPE twice for ${t[1]}`);
      typed.add(t[1]);
    } else if (line !== "" && !line.startsWith("#")) {
      const key = line.slice(0, line.lastIndexOf(" "));
      if (series.has(key)) throw new Error(`series twice: ${key}`);
      series.add(key);
    }
  }
  return getMetricsFromStream(Readable.from([text]));
}

const matches = (labels: Record<string, string>, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels[k] === v);

/** The value of the sample of a counter or gauge `family` whose labels include `labels`. */
export function sampleValue(m: PromMetrics, family: string, labels: Record<string, string> = {}): number | undefined {
  return (m[family]?.data as PromData[] | undefined)?.find((d) => matches(d.labels, labels))?.value;
}

/** The histogram series of `family` whose labels include `labels`. */
export function histogram(m: PromMetrics, family: string, labels: Record<string, string>): PromHistogramData | undefined {
  return (m[family]?.data as PromHistogramData[] | undefined)?.find((d) => matches(d.labels, labels));
}
