// The checks, in the order they run. The order is deliberate:
// - cheap, harmless checks first;
// - brute-force checks late, because a target's lockout may follow them;
// - checks that may change the account (e-mail, password, factors) last, so that if they
//   get through, they cannot spoil the checks before them; and what they changed is
//   followed (AuditContext.followChange), so the ones after them still log in.
import type { Check } from './types.js';
import { passwordOnlySession, pendingForcedBrowsing, tokenLoginSkipsMfa } from './login-paths.js';
import { rememberMeSkipsMfa, sessionFixationMfa } from './session-handling.js';
import { otpCrossAccount, recoveryCodeRace, recoveryCodeReuse, totpReplay } from './one-time-codes.js';
import { apiTokenWithoutStepUp, mfaDisableWithoutReauth, staleSessionSensitiveAction } from './sensitive-actions.js';
import { mfaGuessUnlimited, xffRateLimitEvasion } from './guessing.js';
import { passwordResetSession } from './password-reset.js';
import {
  oidcAcrValuesIgnored,
  oidcCodeForPendingSession,
  oidcPromptNoneWithPendingSession,
  oidcRefreshAfterFactorRemoval,
} from './oidc.js';
import { upstreamLinksWithoutFactor } from './federation.js';

export const allChecks: readonly Check[] = [
  passwordOnlySession,
  pendingForcedBrowsing,
  tokenLoginSkipsMfa,
  sessionFixationMfa,
  rememberMeSkipsMfa,
  totpReplay,
  recoveryCodeReuse,
  recoveryCodeRace,
  otpCrossAccount,
  apiTokenWithoutStepUp,
  mfaGuessUnlimited,
  xffRateLimitEvasion,
  staleSessionSensitiveAction,
  mfaDisableWithoutReauth,
  passwordResetSession,
  // The target as an OpenID Provider (profile `oidc`), last so the numbering of the checks
  // above stays as it was.
  oidcCodeForPendingSession,
  oidcPromptNoneWithPendingSession,
  oidcAcrValuesIgnored,
  // The target as relying party of an upstream the auditor runs (profile `upstreamLogin`);
  // needs the account's factor, so before the check that removes it.
  upstreamLinksWithoutFactor,
  // Changes the account (removes the factor): the very last.
  oidcRefreshAfterFactorRemoval,
];

export type { Check, CheckResult } from './types.js';
