import type { RejectReason } from '../auth/decision.js';
import type { FirstFactorTarget, MsChapV2Check, PasswordCheck, PasswordOutcome } from '../auth/first-factor-target.js';
import type { ResolvedUpstream } from '../config/config.js';
import type { Logger } from '../log.js';
import { AttributeType, MicrosoftAttributeType, VendorId, getVendorAttributes, readText, type RadiusAttribute } from './codec/index.js';
import { RadiusUpstream, type UpstreamAnswer } from './upstream.js';

/**
 * First factor `radius:<name>`: the password is forwarded to an existing RADIUS server (NPS,
 * FreeRADIUS). On accept its reply attributes (Class, Filter-Id, Framed-*, vendor ones) go back
 * to the NAS with the gateway's own accept; its Reply-Message does not (the gateway speaks for
 * itself). An upstream Access-Challenge (NPS or FreeRADIUS asking for a token of its own, a new
 * password) is passed on to the NAS with its prompt; the answer goes back with the upstream's
 * State, and only its accept counts as the first factor.
 *
 * MS-CHAPv2 (checkMsChapV2): the gateway never sees the password, so the NAS's MS-CHAP-Challenge
 * and MS-CHAP2-Response go up as they came and the upstream (NPS, FreeRADIUS with NT hashes)
 * decides. Its accept carries MS-CHAP2-Success (passed on with the other reply attributes: the
 * NAS needs it to finish MS-CHAPv2 with the user's device) and MPPE keys (decrypted by the
 * upstream client, handed on in the clear for the front end to encrypt for the NAS). Its reject
 * carries MS-CHAP-Error, passed back to the NAS; the error code in it names the reason when it
 * says more than "wrong password" (RFC 2759 §6: 646 logon hours, 647 disabled, 648 expired).
 */
export class UpstreamFirstFactor implements FirstFactorTarget {
  readonly name: string;
  private readonly upstream: RadiusUpstream;

  constructor(config: ResolvedUpstream, log: Logger) {
    this.name = `radius:${config.name}`;
    this.upstream = new RadiusUpstream({
      name: config.name,
      servers: config.servers.map((s) => ({ host: s.address, port: s.port, secret: s.secret })),
      timeoutMs: config.timeout_ms,
      tries: config.tries,
      deadTimeMs: config.dead_time_seconds * 1000,
      requireMessageAuthenticator: config.require_message_authenticator,
      log,
    });
  }

  async check(req: PasswordCheck): Promise<PasswordOutcome> {
    const resumed = req.continuation === undefined ? undefined : unpackContinuation(req.continuation);
    if (req.continuation !== undefined && resumed === undefined) return { kind: 'reject', reason: 'challenge_invalid' };
    const answer = await this.upstream.forward({
      username: req.login,
      password: Buffer.from(req.password, 'utf8'),
      // The answer to a challenge goes to the server that asked, with its State.
      ...(resumed === undefined ? {} : { state: resumed.state, server: resumed.server }),
      attributes: req.attempt.forward ?? [],
    });
    return outcomeOf(answer);
  }

  async checkMsChapV2(req: MsChapV2Check): Promise<PasswordOutcome> {
    const answer = await this.upstream.forward({
      username: req.login,
      msChapV2: { challenge: req.proof.challenge, response: req.proof.response },
      attributes: req.attempt.forward ?? [],
    });
    return outcomeOf(answer);
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}

function outcomeOf(answer: UpstreamAnswer): PasswordOutcome {
  if (answer.code === 'accept') {
    return {
      kind: 'accept',
      server: answer.server,
      replyAttributes: answer.attributes.filter((a: RadiusAttribute) => a.type !== AttributeType.ReplyMessage),
      ...(answer.mppeKeys === undefined ? {} : { mppeKeys: answer.mppeKeys }),
    };
  }
  if (answer.code === 'challenge' && answer.state !== undefined) {
    return { kind: 'challenge', prompt: answer.replyMessage ?? 'Enter your response', continuation: packContinuation(answer.server, answer.state) };
  }
  if (answer.code === 'challenge') return { kind: 'reject', reason: 'upstream_rejected', detail: `Access-Challenge without State from ${answer.server}` };
  // upstream.ts keeps only Reply-Message and MS-CHAP-Error in a reject; the NAS gets the latter.
  const errors = answer.attributes.filter((a) => a.type === AttributeType.VendorSpecific);
  const code = msChapErrorCode(errors);
  return {
    kind: 'reject',
    reason: (code === undefined ? undefined : MS_CHAP_ERRORS.get(code)) ?? 'upstream_rejected',
    detail: `Access-Reject from ${answer.server}${code === undefined ? '' : ` (MS-CHAP error ${code})`}`,
    ...(errors.length === 0 ? {} : { replyAttributes: errors }),
  };
}

/** RFC 2759 §6 failure codes that say more than "wrong password" (691), as reject reasons. */
const MS_CHAP_ERRORS: ReadonlyMap<number, RejectReason> = new Map<number, RejectReason>([
  [646, 'logon_restricted'],
  [647, 'account_disabled'],
  [648, 'password_expired'],
]);

/** The `E=nnn` of an MS-CHAP-Error (RFC 2759 §6: Ident octet, then "E=eeeeeeeeee R=r C=… V=vvvvvvvvvv M=…"). */
function msChapErrorCode(attributes: readonly RadiusAttribute[]): number | undefined {
  const [error] = getVendorAttributes({ attributes }, VendorId.Microsoft, MicrosoftAttributeType.MsChapError);
  const match = error === undefined ? null : /(?:^|\s)E=(\d{1,10})(?:\s|$)/.exec(readText(error.value.subarray(1)));
  return match === null ? undefined : Number(match[1]);
}

/** The server that challenged ("host:port") and its State: one length octet, the server, the State. */
function packContinuation(server: string, state: Buffer): Buffer {
  const name = Buffer.from(server, 'utf8');
  return Buffer.concat([Buffer.of(name.length), name, state]);
}

function unpackContinuation(packed: Buffer): { server: string; state: Buffer } | undefined {
  const length = packed[0];
  if (length === undefined || packed.length < 1 + length) return undefined;
  return { server: packed.subarray(1, 1 + length).toString('utf8'), state: packed.subarray(1 + length) };
}
