// Log set-up: one line per record on stderr, as text or JSON lines (for log shippers); level changeable live.

import { configureSync, defaultTextFormatter, jsonLinesFormatter, type LogRecord } from "@logtape/logtape";
import type { LogFormat, LogLevel } from "./config/config.ts";

let format: LogFormat = "text";

export function setupLogging(level: LogLevel, fmt: LogFormat = format): void {
  format = fmt;
  const formatter = fmt === "json" ? jsonLinesFormatter : defaultTextFormatter;
  const sink = (r: LogRecord) => { process.stderr.write(formatter(r)); };
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: ["predixy"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
