// Log set-up: one text line per record on stderr, level from the config.

import { configureSync, defaultTextFormatter, type LogRecord } from "@logtape/logtape";
import type { LogLevel } from "./config/config.ts";

export function setupLogging(level: LogLevel): void {
  const sink = (r: LogRecord) => { process.stderr.write(defaultTextFormatter(r)); };
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: ["predixy"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
