import type { GatewayConfig, ResolvedClient } from '../config/config.js';
import type { PolicyConfig } from '../config/schema.js';
import type { DataKeys } from '../crypto/keys.js';
import type { Logger } from '../log.js';
import type { RadiusAttribute } from '../radius/codec/index.js';
import type { Store } from '../store/store.js';
import type { OathToken, User } from '../store/types.js';
import type { AuthAttempt } from './attempt.js';
import type { Decision, MppeKeys } from './decision.js';
import type { FirstFactorChallenges } from './first-factor-challenges.js';
import type { FirstFactorTargets } from './first-factor-target.js';
import type { InlineCodeMatch } from './inline-code-match.js';
import type { SplitPassword } from './inline-factor.js';
import type { ChallengeState } from './sealed-state.js';
import type { CloudVerifier } from '../verify/cloud-verifier.js';

/** What the flow needs from the process: handed in once, shared by every attempt. */
export interface FlowDeps {
  readonly store: Store;
  readonly keys: DataKeys;
  readonly log: Logger;
  /** The current configuration; a reload swaps it, an attempt keeps the one it started with. */
  readonly config: () => GatewayConfig;
  /** Directories and upstream RADIUS servers (first factors `ldap:` and `radius:`). */
  readonly firstFactors?: FirstFactorTargets;
  /** The cloud providers (push, phone, SMS, voice, email); absent when none is configured. */
  readonly verifier?: CloudVerifier;
  /** Epoch ms; replaceable in tests. */
  readonly now?: () => number;
}

/** One attempt's working state, filled in step by step. */
export interface FlowContext {
  readonly attempt: AuthAttempt;
  readonly deps: FlowDeps;
  readonly config: GatewayConfig;
  readonly client: ResolvedClient;
  readonly policy: PolicyConfig;
  readonly now: number;
  /** Set when the attempt answers an Access-Challenge. */
  challenge?: ChallengeState;
  /** The password with any inline factor split off. */
  input?: SplitPassword;
  user?: User;
  tokens?: readonly OathToken[];
  /** An inline code matched while the first factor was checked (startInlineCodeMatch). */
  inlineCodeMatch?: Promise<InlineCodeMatch>;
  /** Failures on record before this attempt (read by account-status when lockout is on). */
  priorFailures?: number;
  firstFactor: string | null;
  firstFactorPassed: boolean;
  /** Continuations of first-factor challenges (upstream Access-Challenges) of this process. */
  readonly firstFactorChallenges: FirstFactorChallenges;
  /** An unknown user let through on the first factor alone (`unknown_users: pass`). */
  unknownUserPass?: boolean;
  /** Reply attributes the first factor's target returned on accept, passed on to the NAS. */
  replyAttributes?: readonly RadiusAttribute[];
  /** MPPE keys the first factor's target returned on accept, owed to the NAS with the accept. */
  mppeKeys?: MppeKeys;
  method: string | null;
  /** For the audit record: the provider used, its message/call id, the number called or texted, the push device's id. */
  provider?: string;
  providerMessageId?: string | null;
  phone?: string | null;
  deviceToken?: string | null;
  /** Milliseconds per step, for the audit record. */
  readonly timings: Record<string, number>;
}

/** A step either decides (returns a Decision, ending the flow) or passes (undefined). */
export type Step = (ctx: FlowContext) => Promise<Decision | undefined> | Decision | undefined;
