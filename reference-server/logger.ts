// Structured JSON logs, one object a line, with levels. Fields are passed through a redactor that replaces any
// value under a key that could carry content or credentials [SEC]: the server never logs what it must not read.
import type { LogLevel } from './config.ts';
import type { Logger } from './context.ts';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEYS = /^(body|envelope|envelopes|secret|password|authorization|identitykey|publickey|signature|signedprekey|prekeys?|onetimeprekeys?|onetimeprekey|linkcode|code|plaintext|ciphertext)$/i;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[deep]';
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = SECRET_KEYS.test(key) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const threshold = ORDER[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, event: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < threshold) return;
    const record = { time: new Date().toISOString(), level: lvl, event, ...(fields ? (redact(fields) as Record<string, unknown>) : {}) };
    write(JSON.stringify(record) + '\n');
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
  };
}
