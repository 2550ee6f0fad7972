import { isIP } from 'node:net';
import type { ResolvedClient } from '../config/config.js';

interface Block {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
  readonly client: ResolvedClient;
}

/**
 * The RADIUS client table: which configured client a packet's source address belongs to. The
 * most specific block wins (a /32 for one appliance beats the /16 of its site), as in
 * FreeRADIUS's clients.conf. Addresses that match no block belong to no client and are dropped.
 */
export class ClientTable {
  private readonly blocks: Block[];

  constructor(clients: readonly ResolvedClient[]) {
    const blocks: Block[] = [];
    for (const client of clients) {
      for (const spec of client.addresses) blocks.push(parseBlock(spec, client));
    }
    this.blocks = blocks.sort((a, b) => b.prefix - a.prefix);
  }

  match(address: string): ResolvedClient | undefined {
    const parsed = parseAddress(address);
    if (!parsed) return undefined;
    for (const block of this.blocks) {
      if (block.family !== parsed.family) continue;
      const bits = parsed.family === 4 ? 32 : 128;
      const shift = BigInt(bits - block.prefix);
      if (parsed.value >> shift === block.network >> shift) return block.client;
    }
    return undefined;
  }
}

/** IPv4-mapped IPv6 sources (::ffff:a.b.c.d on a dual-stack socket) are matched as IPv4. */
export function canonicalAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}

function parseAddress(address: string): { family: 4 | 6; value: bigint } | undefined {
  const canonical = canonicalAddress(address.split('%')[0] ?? '');
  const family = isIP(canonical);
  if (family === 4) {
    const value = canonical.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  if (family === 6) return { family: 6, value: ipv6ToBigInt(canonical) };
  return undefined;
}

function ipv6ToBigInt(address: string): bigint {
  let text = address;
  // A trailing dotted quad (::1.2.3.4) stands for the last 32 bits.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = dotted[1].split('.').map(Number);
    text = text.slice(0, -dotted[1].length) + `${(((v4[0] ?? 0) << 8) | (v4[1] ?? 0)).toString(16)}:${(((v4[2] ?? 0) << 8) | (v4[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headParts.length - tailParts.length;
  const parts = tail === undefined ? headParts : [...headParts, ...Array<string>(missing).fill('0'), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

function parseBlock(spec: string, client: ResolvedClient): Block {
  const [addr = '', bits] = spec.split('/');
  const parsed = parseAddress(addr);
  if (!parsed) throw new RangeError(`not an address: ${spec}`);
  const width = parsed.family === 4 ? 32 : 128;
  const prefix = bits === undefined ? width : Number(bits);
  return { family: parsed.family, network: parsed.value, prefix, client };
}
