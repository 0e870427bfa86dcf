/** A pino logger whose lines a test reads (parsed), and their raw text (for "never logged" checks). */
import { Writable } from 'node:stream';
import pino, { type Level } from 'pino';

export function capturedLogger(level: Level = 'warn') {
  const lines: Record<string, any>[] = [];
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines, text: () => text };
}
