import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { anchorPassword, anchorUser } from './anchor-freeradius.js';

/**
 * The child process of node-floor.ts: the least a RADIUS server on Node.js does per PAP
 * Access-Request, and nothing of the gateway's own code. It checks the Message-Authenticator
 * (HMAC-MD5, constant-time compare), looks the user up in a Map, decrypts User-Password
 * (RFC 2865 §5.2), compares it, and answers Access-Accept or -Reject with a Message-Authenticator
 * first and the Response Authenticator: what FreeRADIUS's PAP-from-a-users-file anchor does.
 *
 * argv: USERS SECRET RECEIVE_BUFFER_BYTES. Prints `{"port":N}` once bound.
 */

const [users, secretText, rcvbuf] = [Number(process.argv[2]), process.argv[3] ?? '', Number(process.argv[4])];
const secret = Buffer.from(secretText, 'utf8');
const passwords = new Map<string, string>();
for (let i = 1; i <= users; i++) passwords.set(anchorUser(i), anchorPassword(i));

const ACCESS_REQUEST = 1;
const USER_NAME = 1;
const USER_PASSWORD = 2;
const MESSAGE_AUTHENTICATOR = 80;

const md5 = (...parts: Buffer[]): Buffer => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** RFC 2865 §5.2: b1 = MD5(S + RA), c(i) = p(i) xor b(i), b(i) = MD5(S + c(i-1)). */
function decryptPassword(hidden: Buffer, requestAuthenticator: Buffer): string {
  const out = Buffer.alloc(hidden.length);
  let prev = requestAuthenticator;
  for (let off = 0; off < hidden.length; off += 16) {
    const b = md5(secret, prev);
    for (let i = 0; i < 16; i++) out[off + i] = (hidden[off + i] ?? 0) ^ (b[i] ?? 0);
    prev = hidden.subarray(off, off + 16);
  }
  const end = out.indexOf(0);
  return out.subarray(0, end < 0 ? out.length : end).toString('utf8');
}

function answer(request: Buffer): Buffer | undefined {
  if (request.length < 20 || request[0] !== ACCESS_REQUEST || request.readUInt16BE(2) !== request.length) return undefined;
  const authenticator = request.subarray(4, 20);
  let userName: string | undefined;
  let hidden: Buffer | undefined;
  let ma = -1;
  for (let off = 20; off + 2 <= request.length; ) {
    const type = request[off] ?? 0;
    const len = request[off + 1] ?? 0;
    if (len < 2 || off + len > request.length) return undefined;
    if (type === USER_NAME) userName = request.toString('utf8', off + 2, off + len);
    else if (type === USER_PASSWORD) hidden = request.subarray(off + 2, off + len);
    else if (type === MESSAGE_AUTHENTICATOR && len === 18) ma = off;
    off += len;
  }
  if (ma < 0 || userName === undefined || hidden === undefined || hidden.length % 16 !== 0) return undefined;
  const zeroed = Buffer.from(request);
  zeroed.fill(0, ma + 2, ma + 18);
  if (!timingSafeEqual(createHmac('md5', secret).update(zeroed).digest(), request.subarray(ma + 2, ma + 18))) return undefined;

  const expected = passwords.get(userName);
  const accepted = expected !== undefined && expected === decryptPassword(hidden, authenticator);
  const reply = Buffer.alloc(38);
  reply[0] = accepted ? 2 : 3;
  reply[1] = request[1] ?? 0;
  reply.writeUInt16BE(reply.length, 2);
  authenticator.copy(reply, 4);
  reply[20] = MESSAGE_AUTHENTICATOR;
  reply[21] = 18;
  createHmac('md5', secret).update(reply).digest().copy(reply, 22);
  md5(reply, secret).copy(reply, 4);
  return reply;
}

const socket = createSocket({ type: 'udp4', recvBufferSize: rcvbuf });
socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
  const reply = answer(msg);
  if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
});
socket.bind(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: socket.address().port })}\n`));
