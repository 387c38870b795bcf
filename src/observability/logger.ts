import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/**
 * Paths that may carry secrets or user content. Keys are never logged at any level; prompts and outputs only
 * reach the log at debug, where the request logger adds them on purpose.
 */
const redactedPaths = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['x-api-key']",
  "headers.authorization",
  "authorization",
  "apiKey",
  "key",
  "*.apiKey",
  "*.key",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: "ai-request-handler" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactedPaths, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  // Standard output written asynchronously: lines logged while a write is under way go out together in the next,
  // instead of one blocking write per line on the request path; what is still buffered is flushed when the process
  // exits (pino registers that). A kill -9 can lose the last lines, never a stored request.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
