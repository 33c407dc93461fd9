// The authkey handshake against peers that do not follow it: a hostile length prefix, frames
// sent before authenticating, a peer that hangs up or stalls. None of them gets a frame processed.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { AuthenticationError, Client, Listener } from '../../lib/index.js';

/** A raw TCP socket to `listener`, outside our Connection and its framing. */
function raw(listener: Listener): Promise<net.Socket> {
  const [host, port] = listener.address as [string, number];
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.on('error', reject);
  });
}

function frame(payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(payload.length);
  return Buffer.concat([h, payload]);
}

describe('an unauthenticated peer', () => {
  it('with a huge length prefix is refused before anything is allocated (4-byte and 8-byte forms)', async () => {
    for (const prefix of [Buffer.from([0x7f, 0xff, 0xff, 0xff]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x40, 0, 0, 0, 0, 0])]) {
      const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
      const accepted = l.accept();
      const s = await raw(l);
      s.write(prefix);
      const before = process.memoryUsage().arrayBuffers;
      const err = await accepted.catch((e) => e);
      expect(err).toBeInstanceOf(AuthenticationError);
      expect(err.message).toMatch(/authkey handshake failed \(Connection.recvBytes: bad message length: message of \d+ bytes is longer than the 256 bytes allowed/);
      expect(err.message).toMatch(/longer than the 256 bytes a handshake allows/);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
      // The listener closed its end: the peer sees EOF.
      await new Promise((r) => s.once('close', r).resume());
      l.close();
    }
  });

  it('that sends frames instead of answering the challenge never has one delivered', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
    const accepted = l.accept();
    const s = await raw(l);
    let got = Buffer.alloc(0);
    s.on('data', (d) => (got = Buffer.concat([got, d])));
    s.write(frame(Buffer.from('0123456789abcdef'))); // 16 bytes: taken for an HMAC-MD5 reply, and wrong
    s.write(frame(Buffer.from('an application message')));
    await expect(accepted).rejects.toThrow(/authkey handshake failed \(digest received was wrong\): both ends must use the same authkey/);
    await new Promise((r) => s.once('close', r));
    // What the peer saw: our challenge, then #FAILURE#, then the end.
    expect(got.subarray(4, 15).toString()).toBe('#CHALLENGE#');
    expect(got.subarray(4 + 11, 4 + 11 + 8).toString()).toBe('{sha256}');
    expect(got.subarray(got.length - 9).toString()).toBe('#FAILURE#');
    l.close();
  });

  it('that hangs up during the handshake makes accept() reject with AuthenticationError', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
    const accepted = l.accept();
    const s = await raw(l);
    s.destroy();
    const err = await accepted.catch((e) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toMatch(/the client closed the connection or broke the protocol/);
    l.close();
  });

  it('that stalls in the handshake does not hold up other clients', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
    const stalled = l.accept();
    const s = await raw(l); // says nothing
    const good = l.accept();
    const c = await Client(l.address, { authkey: 'k' });
    const conn = await good;
    c.send('through');
    expect(await conn.recv()).toBe('through');
    // Closing the listener ends the stalled handshake too.
    l.close();
    await expect(stalled).rejects.toThrow(/Listener.accept: the listener on 127\.0\.0\.1:\d+ is closed/);
    s.destroy();
    c.close();
    conn.close();
  });

  it('a Client with an authkey facing a Listener without one fails once the listener side closes', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const client = Client(l.address, { authkey: 'k' });
    const conn = await l.accept();
    conn.close();
    const err = await client.catch((e) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toMatch(/^Client\(127\.0\.0\.1:\d+\): the authkey handshake failed .*the listener closed the connection/);
    l.close();
  });

  it('a Client without an authkey facing a Listener with one: the listener refuses it', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
    const accepted = l.accept();
    const c = await Client(l.address); // no handshake on this side: it just connects
    c.send({ a: 'message' });
    await expect(accepted).rejects.toThrow(AuthenticationError);
    // It received the challenge (a byte string, not a message of ours) and then the refusal.
    expect((await c.recvBytes()).subarray(0, 11).toString()).toBe('#CHALLENGE#');
    expect((await c.recvBytes()).toString()).toBe('#FAILURE#');
    c.close();
    l.close();
  });
});

describe('authkeys', () => {
  it('may be a string, a Buffer or a Uint8Array with the same bytes', async () => {
    const l = new Listener({ authkey: new Uint8Array([0x6b, 0x65, 0x79]) });
    for (const authkey of ['key', Buffer.from('key')]) {
      const [a, b] = await Promise.all([l.accept(), Client(l.address, { authkey })]);
      a.send(1);
      expect(await b.recv()).toBe(1);
      a.close();
      b.close();
    }
    l.close();
  });

  it('of another type are refused at once', () => {
    expect(() => new Listener({ authkey: 42 as never })).toThrow(/Listener: authkey must be a Buffer, a Uint8Array or a string, got number/);
  });
});
