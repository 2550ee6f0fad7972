import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * The NAS's and the user's side of MS-CHAPv2 (RFC 2759) and its MPPE keys (RFC 3079), for tests:
 * what a VPN concentrator puts in MS-CHAP-Challenge and MS-CHAP2-Response (RFC 2548), and what
 * it expects back in MS-CHAP2-Success, MS-MPPE-Send-Key and MS-MPPE-Recv-Key. Written from the
 * RFCs, independently of src/, and checked against their published test vectors.
 *
 * Node.js 20 (OpenSSL 3) refuses MD4 and single DES (the legacy provider), so MD4 is written out
 * here (RFC 1320) and DES is three-key 3DES with one key three times: E(K, D(K, E(K, x))) = E(K, x).
 */

// ---------------------------------------------------------------------------------------------
// MD4, RFC 1320.

function rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

export function md4(data: Buffer): Buffer {
  const bitLength = data.length * 8;
  const padded = Buffer.alloc(Math.ceil((data.length + 9) / 64) * 64);
  data.copy(padded);
  padded[data.length] = 0x80;
  padded.writeUInt32LE(bitLength >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor(bitLength / 2 ** 32), padded.length - 4);

  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;
  const f = (x: number, y: number, z: number): number => (x & y) | (~x & z);
  const g = (x: number, y: number, z: number): number => (x & y) | (x & z) | (y & z);
  const h = (x: number, y: number, z: number): number => x ^ y ^ z;
  const X = new Array<number>(16);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) X[i] = padded.readUInt32LE(offset + i * 4);
    const x = (i: number): number => X[i] as number;
    const [aa, bb, cc, dd] = [a, b, c, d];
    // Round 1: [abcd k s] a = (a + F(b,c,d) + X[k]) <<< s
    for (const k of [0, 4, 8, 12]) {
      a = rotl((a + f(b, c, d) + x(k)) >>> 0, 3);
      d = rotl((d + f(a, b, c) + x(k + 1)) >>> 0, 7);
      c = rotl((c + f(d, a, b) + x(k + 2)) >>> 0, 11);
      b = rotl((b + f(c, d, a) + x(k + 3)) >>> 0, 19);
    }
    // Round 2: a = (a + G(b,c,d) + X[k] + 5A827999) <<< s
    for (const k of [0, 1, 2, 3]) {
      a = rotl((a + g(b, c, d) + x(k) + 0x5a827999) >>> 0, 3);
      d = rotl((d + g(a, b, c) + x(k + 4) + 0x5a827999) >>> 0, 5);
      c = rotl((c + g(d, a, b) + x(k + 8) + 0x5a827999) >>> 0, 9);
      b = rotl((b + g(c, d, a) + x(k + 12) + 0x5a827999) >>> 0, 13);
    }
    // Round 3: a = (a + H(b,c,d) + X[k] + 6ED9EBA1) <<< s
    for (const k of [0, 2, 1, 3]) {
      a = rotl((a + h(b, c, d) + x(k) + 0x6ed9eba1) >>> 0, 3);
      d = rotl((d + h(a, b, c) + x(k + 8) + 0x6ed9eba1) >>> 0, 9);
      c = rotl((c + h(d, a, b) + x(k + 4) + 0x6ed9eba1) >>> 0, 11);
      b = rotl((b + h(c, d, a) + x(k + 12) + 0x6ed9eba1) >>> 0, 15);
    }
    a = (a + aa) >>> 0;
    b = (b + bb) >>> 0;
    c = (c + cc) >>> 0;
    d = (d + dd) >>> 0;
  }
  const out = Buffer.alloc(16);
  [a, b, c, d].forEach((v, i) => out.writeUInt32LE(v, i * 4));
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 2759 §8.

const sha1 = (...parts: Buffer[]): Buffer => parts.reduce((h, p) => h.update(p), createHash('sha1')).digest();

/** NtPasswordHash: MD4 of the password in UTF-16LE (RFC 2759 §8.3). */
export function ntPasswordHash(password: string): Buffer {
  return md4(Buffer.from(password, 'utf16le'));
}

/** ChallengeHash: the first 8 octets of SHA1(PeerChallenge + AuthenticatorChallenge + UserName) (§8.2). */
export function challengeHash(peerChallenge: Buffer, authenticatorChallenge: Buffer, userName: string): Buffer {
  return sha1(peerChallenge, authenticatorChallenge, Buffer.from(userName, 'utf8')).subarray(0, 8);
}

/** DesEncrypt with a 7-octet key (§8.6): the 56 key bits spread over 8 octets, parity bits left 0. */
function desEncrypt(clear: Buffer, key7: Buffer): Buffer {
  const k = key7;
  const key = Buffer.from([
    k[0] as number,
    ((k[0] as number) << 7) | ((k[1] as number) >> 1),
    ((k[1] as number) << 6) | ((k[2] as number) >> 2),
    ((k[2] as number) << 5) | ((k[3] as number) >> 3),
    ((k[3] as number) << 4) | ((k[4] as number) >> 4),
    ((k[4] as number) << 3) | ((k[5] as number) >> 5),
    ((k[5] as number) << 2) | ((k[6] as number) >> 6),
    (k[6] as number) << 1,
  ]).map((octet) => octet & 0xfe);
  const cipher = createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(clear), cipher.final()]);
}

/** ChallengeResponse: three DES encryptions of the 8-octet challenge under the zero-padded password hash (§8.5). */
export function challengeResponse(challenge: Buffer, passwordHash: Buffer): Buffer {
  const z = Buffer.alloc(21);
  passwordHash.copy(z);
  return Buffer.concat([desEncrypt(challenge, z.subarray(0, 7)), desEncrypt(challenge, z.subarray(7, 14)), desEncrypt(challenge, z.subarray(14, 21))]);
}

/** GenerateNTResponse (§8.1). */
export function generateNtResponse(authenticatorChallenge: Buffer, peerChallenge: Buffer, userName: string, password: string): Buffer {
  return challengeResponse(challengeHash(peerChallenge, authenticatorChallenge, userName), ntPasswordHash(password));
}

const AUTH_MAGIC1 = Buffer.from('Magic server to client signing constant', 'ascii');
const AUTH_MAGIC2 = Buffer.from('Pad to make it do more than one iteration', 'ascii');

/** GenerateAuthenticatorResponse: "S=" and 40 upper-case hex digits (§8.7). */
export function generateAuthenticatorResponse(password: string, ntResponse: Buffer, peerChallenge: Buffer, authenticatorChallenge: Buffer, userName: string): string {
  const passwordHashHash = md4(ntPasswordHash(password));
  const digest = sha1(passwordHashHash, ntResponse, AUTH_MAGIC1);
  const final = sha1(digest, challengeHash(peerChallenge, authenticatorChallenge, userName), AUTH_MAGIC2);
  return `S=${final.toString('hex').toUpperCase()}`;
}

// ---------------------------------------------------------------------------------------------
// RFC 3079 §3.3, §3.4: MPPE keys from MS-CHAPv2 credentials.

const MASTER_MAGIC = Buffer.from('This is the MPPE Master Key', 'ascii');
const CLIENT_SEND_MAGIC = Buffer.from('On the client side, this is the send key; on the server side, it is the receive key.', 'ascii');
const CLIENT_RECV_MAGIC = Buffer.from('On the client side, this is the receive key; on the server side, it is the send key.', 'ascii');
const SHS_PAD1 = Buffer.alloc(40, 0x00);
const SHS_PAD2 = Buffer.alloc(40, 0xf2);

/** GetMasterKey (§3.4). */
export function masterKey(passwordHashHash: Buffer, ntResponse: Buffer): Buffer {
  return sha1(passwordHashHash, ntResponse, MASTER_MAGIC).subarray(0, 16);
}

/** GetAsymmetricStartKey (§3.4). */
export function asymmetricStartKey(master: Buffer, length: 8 | 16, isSend: boolean, isServer: boolean): Buffer {
  const magic = isSend === isServer ? CLIENT_RECV_MAGIC : CLIENT_SEND_MAGIC;
  return sha1(master, SHS_PAD1, magic, SHS_PAD2).subarray(0, length);
}

/**
 * The 128-bit keys a RADIUS server (NPS, FreeRADIUS rlm_mschap) issues for an MS-CHAPv2 login:
 * MS-MPPE-Send-Key is the NAS's (the PPP server's) send key, MS-MPPE-Recv-Key its receive key.
 */
export function mppeKeys(password: string, ntResponse: Buffer): { sendKey: Buffer; recvKey: Buffer } {
  const master = masterKey(md4(ntPasswordHash(password)), ntResponse);
  return { sendKey: asymmetricStartKey(master, 16, true, true), recvKey: asymmetricStartKey(master, 16, false, true) };
}

// ---------------------------------------------------------------------------------------------
// One login as a NAS sends it.

export interface MsChapV2Login {
  /** MS-CHAP-Challenge (the NAS's authenticator challenge), 16 octets. */
  challenge: Buffer;
  /** MS-CHAP2-Response (RFC 2548 §2.3.2): Ident, Flags, Peer-Challenge, 8 reserved octets, NT-Response. */
  response: Buffer;
  /** What MS-CHAP2-Success must hold for this login: the Ident, then "S=" and the authenticator response. */
  success: Buffer;
  /** The MPPE keys a server that knows the password issues. */
  sendKey: Buffer;
  recvKey: Buffer;
}

/** A fresh MS-CHAPv2 login of `userName` with `password` (random challenges unless given). */
export function msChapV2Login(userName: string, password: string, opts: { ident?: number; challenge?: Buffer; peerChallenge?: Buffer } = {}): MsChapV2Login {
  const ident = opts.ident ?? 1 + (randomBytes(1)[0] as number) % 255;
  const challenge = opts.challenge ?? randomBytes(16);
  const peerChallenge = opts.peerChallenge ?? randomBytes(16);
  const ntResponse = generateNtResponse(challenge, peerChallenge, userName, password);
  const response = Buffer.concat([Buffer.of(ident, 0), peerChallenge, Buffer.alloc(8), ntResponse]);
  const success = Buffer.concat([Buffer.of(ident), Buffer.from(generateAuthenticatorResponse(password, ntResponse, peerChallenge, challenge, userName), 'ascii')]);
  return { challenge, response, success, ...mppeKeys(password, ntResponse) };
}
