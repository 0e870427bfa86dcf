// Hands out second-factor codes without tripping a target's replay protection.
//
// A correct TOTP implementation never accepts a code twice, nor a code from a step older
// than the last one it accepted. So TOTP codes are generated for explicit, strictly
// increasing time steps: the current step, then the next ones the target's drift window
// already accepts. Only when those run out does the auditor wait for real time to move.
// Recovery codes are preferred for routine logins (they cost no waiting), but a few are
// held back for the checks that are about recovery codes.
import { Secret, TOTP } from 'otpauth';

const STEP_SECONDS = 30;

export interface IssuedCode {
  /** `passkey`: no code; the software authenticator signs the target's challenge when it is sent. */
  kind: 'totp' | 'recovery' | 'passkey';
  code: string;
  /** TOTP only: the time step the code belongs to. */
  step?: number;
}

export class CodeSupply {
  private readonly totp: TOTP | undefined;
  private lastStep = -Infinity;
  private readonly recovery: string[];
  private reserved = 0;

  constructor(
    totpSecret: string | undefined,
    recoveryCodes: readonly string[],
    /** Steps of clock drift the target accepts after the current one. */
    private readonly window: number,
    private readonly now: () => number = Date.now,
  ) {
    this.totp = totpSecret
      ? new TOTP({ secret: Secret.fromBase32(totpSecret), digits: 6, period: STEP_SECONDS, algorithm: 'SHA1' })
      : undefined;
    this.recovery = [...recoveryCodes];
  }

  get hasTotp(): boolean {
    return this.totp !== undefined;
  }

  get recoveryLeft(): number {
    return this.recovery.length;
  }

  /** Keeps `n` recovery codes for takeRecovery(true) only. */
  reserveRecovery(n: number): void {
    this.reserved = Math.min(n, this.recovery.length);
  }

  takeRecovery(fromReserve = false): IssuedCode | undefined {
    if (!fromReserve && this.recovery.length <= this.reserved) return undefined;
    const code = this.recovery.shift();
    if (code === undefined) return undefined;
    if (fromReserve && this.reserved > 0) this.reserved--;
    return { kind: 'recovery', code };
  }

  /** Milliseconds until the next unused TOTP step becomes acceptable (0: usable now). */
  totpWaitMs(): number {
    const next = this.nextStep();
    const acceptableFrom = (next - this.window) * STEP_SECONDS * 1000;
    return Math.max(0, acceptableFrom - this.now());
  }

  /** Records that the target already accepted a code of `step` (e.g. at enrolment). */
  markUsed(step: number): void {
    this.lastStep = Math.max(this.lastStep, step);
  }

  /** The code for the next unused step; call totpWaitMs() first and wait that long. */
  takeTotp(): IssuedCode {
    if (!this.totp) throw new Error('no TOTP secret in the profile');
    const step = this.nextStep();
    this.lastStep = step;
    return { kind: 'totp', code: this.totp.generate({ timestamp: step * STEP_SECONDS * 1000 }), step };
  }

  /** A code for the current step, without marking it used (for another account's code). */
  peekTotp(): string {
    if (!this.totp) throw new Error('no TOTP secret in the profile');
    return this.totp.generate({ timestamp: this.now() });
  }

  /** A six-digit code that is valid for no step near now: a guaranteed wrong guess. */
  wrongTotp(): string {
    const current = Math.floor(this.now() / 1000 / STEP_SECONDS);
    const valid = new Set<string>();
    if (this.totp) {
      for (let s = current - 3; s <= current + 3; s++) valid.add(this.totp.generate({ timestamp: s * STEP_SECONDS * 1000 }));
    }
    for (;;) {
      const guess = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      if (!valid.has(guess)) return guess;
    }
  }

  /** Whether `code` is valid for the current step or one next to it. */
  isNearValid(code: string): boolean {
    if (!this.totp) return false;
    const current = Math.floor(this.now() / 1000 / STEP_SECONDS);
    for (let s = current - 1; s <= current + 1; s++) {
      if (this.totp.generate({ timestamp: s * STEP_SECONDS * 1000 }) === code) return true;
    }
    return false;
  }

  private nextStep(): number {
    const current = Math.floor(this.now() / 1000 / STEP_SECONDS);
    return Math.max(current, this.lastStep + 1);
  }
}
