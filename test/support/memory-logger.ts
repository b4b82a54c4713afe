import type { Logger } from '../../src/logger.js';

/** A logger that remembers what it was told. */
export function memoryLogger() {
  const lines: { level: string; message: string; context: object }[] = [];
  const log = (level: string) => (context: object, message: string) =>
    lines.push({ level, message, context });
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  return { logger, lines };
}
