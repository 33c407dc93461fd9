// Wire compatibility with CPython: its multiprocessing.connection Client and Listener talk to ours
// on AF_UNIX and TCP, with the right and the wrong authkey, in its own handshake (3.11 here) and
// in the 3.12+ one ('{digest}' prefixes), exchanging send_bytes/recv_bytes small and over 1 MiB.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthenticationError, Client, ClientSync, Listener, type Connection } from '../../lib/index.js';

const hasPython = spawnSync('python3', ['-c', 'import multiprocessing.connection'], { stdio: 'ignore' }).status === 0;
if (!hasPython) console.warn('cpython.test.ts: python3 with multiprocessing not found: the CPython interop tests are SKIPPED');

const PEER = resolve(import.meta.dirname, '..', 'fixtures', 'mp_peer.py');
const dir = mkdtempSync(join(tmpdir(), 'mp-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Peer {
  proc: ChildProcess;
  /** The next JSON line the peer prints. */
  line(): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function startPeer(mode: 'server' | 'client', cfg: Record<string, unknown>): Peer {
  const proc = spawn('python3', [PEER, mode, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; stderr: string }>((r) => proc.on('close', (code) => r({ code, stderr })));
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  return {
    proc,
    exited,
    async line() {
      const next = await Promise.race([lines.next(), exited.then((e) => ({ done: true, value: `exited ${e.code}: ${e.stderr}` }))]);
      if (next.done) throw new Error(`the python peer printed nothing: ${next.value ?? ''}`);
      return JSON.parse(next.value as string);
    },
  };
}

/** A message whose reversal is easy to check: bytes i*7 mod 251. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) % 251;
  return b;
}

async function exchange(conn: Connection): Promise<void> {
  for (const size of [0, 1, 100, 1024 * 1024 + 123, 3 * 1024 * 1024]) {
    const msg = pattern(size);
    conn.sendBytes(msg);
    const back = await conn.recvBytes();
    expect(back.length).toBe(size);
    expect(back.equals(Buffer.from(msg).reverse())).toBe(true);
  }
  // A few in flight at once, answered in order.
  const many = [5, 70000, 9].map(pattern);
  for (const m of many) conn.sendBytes(m);
  for (const m of many) expect((await conn.recvBytes()).equals(Buffer.from(m).reverse())).toBe(true);
}

const families = [
  { family: 'AF_UNIX', address: () => join(dir, `s-${Math.random().toString(36).slice(2)}`) },
  { family: 'AF_INET', address: () => ['127.0.0.1', 0] as [string, number] },
] as const;
const protos = ['own', '3.12'] as const;

describe.skipIf(!hasPython)('a CPython Client connects to our Listener', () => {
  for (const { family, address } of families) {
    for (const proto of protos) {
      it(`${family}, ${proto === 'own' ? 'its own (3.11, HMAC-MD5) handshake' : 'the 3.12+ {sha256} handshake'}, right authkey: both ways, small and > 1 MiB`, async () => {
        const listener = new Listener({ address: address(), authkey: 'sesame' });
        const peer = startPeer('client', { address: listener.address, authkey: 'sesame', proto });
        const conn = await listener.accept();
        // Our challenge names sha256: a 3.12+ peer answers in it, a 3.11 one with a raw HMAC-MD5.
        expect(await peer.line()).toEqual(proto === 'own' ? { connected: true } : { connected: true, seen: ['challenge:sha256', 'reply:sha256'] });
        await exchange(conn);
        conn.close();
        listener.close();
        expect((await peer.exited).code).toBe(0);
      });

      it(`${family}, ${proto} handshake, wrong authkey: AuthenticationError on both sides, no frame processed`, async () => {
        const listener = new Listener({ address: address(), authkey: 'sesame' });
        const peer = startPeer('client', { address: listener.address, authkey: 'not sesame', proto });
        await expect(listener.accept()).rejects.toThrow(AuthenticationError);
        expect(await peer.line()).toMatchObject({ error: 'AuthenticationError', message: 'digest sent was rejected' });
        expect((await peer.exited).code).toBe(3);
        listener.close();
      });
    }

    it(`${family}, no authkey on either side`, async () => {
      const listener = new Listener({ address: address() });
      const peer = startPeer('client', { address: listener.address });
      const conn = await listener.accept();
      await exchange(conn);
      conn.close();
      listener.close();
      expect((await peer.exited).code).toBe(0);
    });
  }
});

describe.skipIf(!hasPython)('our Client connects to a CPython Listener', () => {
  for (const { family, address } of families) {
    for (const proto of protos) {
      it(`${family}, ${proto === 'own' ? 'its own (3.11: 20-byte challenge) handshake' : 'the 3.12+ {sha256} handshake'}, right authkey: both ways, small and > 1 MiB`, async () => {
        const peer = startPeer('server', { family, address: address(), authkey: 'sesame', proto });
        const { address: at } = await peer.line();
        const conn = await Client(at as string, { authkey: Buffer.from('sesame') });
        expect(await peer.line()).toEqual(proto === 'own' ? { connected: true } : { connected: true, seen: ['reply:sha256', 'challenge:sha256'] });
        await exchange(conn);
        conn.close();
        expect((await peer.exited).code).toBe(0);
      });

      it(`${family}, ${proto} handshake, wrong authkey: AuthenticationError on both sides`, async () => {
        const peer = startPeer('server', { family, address: address(), authkey: 'sesame', proto });
        const { address: at } = await peer.line();
        const err = await Client(at as string, { authkey: 'open sesame' }).catch((e) => e);
        expect(err).toBeInstanceOf(AuthenticationError);
        expect(err.message).toMatch(/authkey handshake failed \(digest sent was rejected\): both ends must use the same authkey/);
        expect(await peer.line()).toMatchObject({ error: 'AuthenticationError', message: 'digest received was wrong' });
        expect((await peer.exited).code).toBe(3);
      });
    }
  }

  for (const proto of protos) {
    it(`ClientSync, ${proto} handshake: connects and authenticates before it returns`, async () => {
      const peer = startPeer('server', { family: 'AF_INET', address: ['127.0.0.1', 0], authkey: 'sesame', proto });
      const { address: at } = await peer.line();
      const conn = ClientSync(at as [string, number], { authkey: 'sesame' });
      conn.sendBytes(Buffer.from('sync'));
      expect(conn.recvBytesSync().toString()).toBe('cnys');
      conn.close();
      expect((await peer.exited).code).toBe(0);
      const bad = startPeer('server', { family: 'AF_INET', address: ['127.0.0.1', 0], authkey: 'sesame', proto });
      const { address: at2 } = await bad.line();
      expect(() => ClientSync(at2 as [string, number], { authkey: 'wrong' })).toThrow(/^ClientSync\(127\.0\.0\.1:\d+\): the authkey handshake failed \(digest sent was rejected\)/);
      expect((await bad.exited).code).toBe(3);
    });
  }

  for (const digest of ['sha384', 'sha3_256', 'md5']) {
    it(`answers a 3.12+ challenge in the digest it names ({${digest}})`, async () => {
      const peer = startPeer('server', { family: 'AF_INET', address: ['127.0.0.1', 0], authkey: 'k', proto: '3.12', digest });
      const { address: at } = await peer.line();
      const conn = await Client(at as [string, number], { authkey: 'k' });
      expect(await peer.line()).toEqual({ connected: true, seen: [`reply:${digest}`, 'challenge:sha256'] });
      conn.sendBytes(Buffer.from('abc'));
      expect((await conn.recvBytes()).toString()).toBe('cba');
      conn.close();
      expect((await peer.exited).code).toBe(0);
    });
  }
});
