/** `gatehouse <command>` in a child process (node + tsx, no shell between), for signal and start-up tests. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** The server's URL once "gatehouse listening" is logged. */
  listening(ms?: number): Promise<string>;
}

export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: { ...clean, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async listening(ms = 45_000) {
      const t0 = Date.now();
      while (Date.now() - t0 < ms) {
        const m = /"url":"(http:[^"]+)"[^\n]*"msg":"gatehouse listening"/.exec(out);
        if (m) return m[1]!;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`not listening after ${ms} ms: ${err}${out}`);
    },
  };
}

/** Lines of structured (pino) logs with a message matching `re`. */
export function logLines(stdout: string, re: RegExp): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => re.test(String(l.msg)));
}
