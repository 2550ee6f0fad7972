import { ProviderRejectedError, ProviderUnavailableError } from '../../src/errors.js';
import type {
  ApprovalChannel,
  ApprovalOutcome,
  ApprovalRequest,
  CodeChannel,
  CodeMessage,
  Provider,
  ProviderType,
  SentMessage,
  StartedApproval,
} from '../../src/verify/providers/provider.js';

/**
 * An in-process Provider for the flow's unit tests: it records what the flow asked for and
 * answers as the test scripts it. (End-to-end tests use the HTTP fakes in test/fakes/.)
 */
export type Script =
  | { readonly kind: 'approve' | 'deny' | 'fraud' | 'timeout' | 'bad_pin'; readonly afterMs?: number }
  /** Number matching: pick the right number, or a wrong one. */
  | { readonly kind: 'pick'; readonly right: boolean; readonly afterMs?: number }
  /** PIN mode: key in these digits. */
  | { readonly kind: 'pin'; readonly digits: string; readonly afterMs?: number }
  | { readonly kind: 'down' }
  | { readonly kind: 'refuse' };

export class ScriptedProvider implements Provider {
  readonly codeChannels: ReadonlySet<CodeChannel>;
  readonly approvalChannels: ReadonlySet<ApprovalChannel>;
  readonly sent: CodeMessage[] = [];
  readonly approvals: ApprovalRequest[] = [];
  script: Script = { kind: 'approve' };
  private n = 0;

  constructor(
    readonly name: string,
    readonly type: ProviderType,
    channels: { codes?: CodeChannel[]; approvals?: ApprovalChannel[] },
    readonly numberMatching = false,
  ) {
    this.codeChannels = new Set(channels.codes ?? []);
    this.approvalChannels = new Set(channels.approvals ?? []);
  }

  async sendCode(message: CodeMessage): Promise<SentMessage> {
    await Promise.resolve();
    this.failIfScripted();
    this.sent.push(message);
    return { messageId: `${this.name}-msg-${++this.n}` };
  }

  async startApproval(request: ApprovalRequest): Promise<StartedApproval> {
    await Promise.resolve();
    this.failIfScripted();
    this.approvals.push(request);
    const script = this.script;
    const outcome = new Promise<ApprovalOutcome>((resolve) => {
      const settle = async (): Promise<void> => {
        switch (script.kind) {
          case 'approve':
          case 'deny':
          case 'fraud':
          case 'timeout':
          case 'bad_pin':
            resolve({ result: script.kind === 'approve' ? 'approved' : script.kind === 'deny' ? 'denied' : script.kind });
            return;
          case 'pick':
            resolve({ result: script.right === (request.numberMatch !== undefined) ? 'approved' : 'wrong_number' });
            return;
          case 'pin': {
            const ok = (await request.pin?.verify(script.digits)) === true;
            resolve({ result: ok ? 'approved' : 'bad_pin' });
            return;
          }
          default:
            resolve({ result: 'timeout' });
        }
      };
      const afterMs = 'afterMs' in script ? (script.afterMs ?? 0) : 0;
      if (script.kind === 'timeout') {
        request.signal.addEventListener('abort', () => resolve({ result: 'timeout' }));
        return;
      }
      setTimeout(() => void settle(), afterMs);
    });
    return { messageId: `${this.name}-tx-${++this.n}`, outcome };
  }

  async close(): Promise<void> {}

  private failIfScripted(): void {
    if (this.script.kind === 'down') throw new ProviderUnavailableError(`${this.name}: HTTP 500`);
    if (this.script.kind === 'refuse') throw new ProviderRejectedError(`${this.name}: invalid number`, '21211');
  }
}
