// sendBytes / recvBytes / recvBytesInto: Python's argument rules and error cases.
import { describe, expect, it } from 'vitest';
import { Pipe, BufferTooShort } from '../../lib/index.js';

describe('sendBytes', () => {
  it('sends a slice given by offset and size, from any buffer type', () => {
    const [a, b] = Pipe();
    a.sendBytes(Buffer.from('0123456789'), 2, 5);
    expect(b.recvBytesSync().toString()).toBe('23456');
    a.sendBytes(Buffer.from('0123456789'), 7);
    expect(b.recvBytesSync().toString()).toBe('789');
    a.sendBytes(new Uint16Array([0x4241, 0x4443]), 2); // offsets count bytes
    expect(b.recvBytesSync().toString()).toBe('CD');
    a.sendBytes(new Uint8Array(0));
    expect(b.recvBytesSync().length).toBe(0);
    a.sendBytes(new TextEncoder().encode('ab').buffer);
    expect(b.recvBytesSync().toString()).toBe('ab');
    a.close();
    b.close();
  });

  it('rejects bad offsets and sizes without sending anything', () => {
    const [a, b] = Pipe();
    const buf = Buffer.alloc(10);
    expect(() => a.sendBytes(buf, -1)).toThrow(/offset must be a non-negative integer/);
    expect(() => a.sendBytes(buf, 11)).toThrow(/buffer length 10 < offset 11/);
    expect(() => a.sendBytes(buf, 0, -1)).toThrow(/size must be a non-negative integer/);
    expect(() => a.sendBytes(buf, 5, 6)).toThrow(/buffer length 10 < offset \+ size \(11\)/);
    expect(() => a.sendBytes('text' as never)).toThrow(/expected a Buffer/);
    expect(b.pollSync(0)).toBe(false);
    a.close();
    b.close();
  });

  it('refuses a message over maxMessageBytes at the sender', () => {
    const [a, b] = Pipe(true, { maxMessageBytes: 100 });
    expect(() => a.sendBytes(Buffer.alloc(101))).toThrow(/101 bytes exceeds maxMessageBytes \(100\)/);
    a.sendBytes(Buffer.alloc(100));
    expect(b.recvBytesSync().length).toBe(100);
    a.close();
    b.close();
  });
});

describe('recvBytes', () => {
  it('closes the connection when a message is longer than maxLength (Python: bad message length)', async () => {
    const [a, b] = Pipe();
    a.sendBytes(Buffer.alloc(20));
    expect(() => b.recvBytesSync(10)).toThrow(/bad message length: message of 20 bytes is longer than the 10 bytes allowed/);
    expect(b.closed).toBe(true);
    const [c, d] = Pipe();
    c.sendBytes(Buffer.alloc(20));
    await expect(d.recvBytes(19)).rejects.toThrow(/bad message length/);
    expect(d.closed).toBe(true);
    const [e, f] = Pipe();
    e.sendBytes(Buffer.alloc(20));
    expect((await f.recvBytes(20)).length).toBe(20);
    for (const x of [a, c, e, f]) x.close();
  });
});

describe('recvBytesInto', () => {
  it('copies into the buffer at an offset and returns the size', async () => {
    const [a, b] = Pipe();
    const target = Buffer.alloc(16, 0x2e);
    a.sendBytes(Buffer.from('abc'));
    expect(b.recvBytesIntoSync(target, 4)).toBe(3);
    expect(target.toString()).toBe('....abc.........');
    a.sendBytes(Buffer.from('xyz'));
    expect(await b.recvBytesInto(target)).toBe(3);
    expect(target.toString()).toBe('xyz.abc.........');
    const f64 = new Float64Array(2);
    a.sendBytes(new Float64Array([3.25]));
    expect(b.recvBytesIntoSync(f64, 8)).toBe(8);
    expect(f64[1]).toBe(3.25);
    a.close();
    b.close();
  });

  it('large messages arrive intact whichever receive takes them, switching back and forth', async () => {
    const [a, b] = Pipe();
    const target = Buffer.alloc(300 * 1024);
    const sizes = [64 * 1024, 100 * 1024, 40 * 1024, 256 * 1024, 64 * 1024, 33 * 1024];
    const kinds = ['into', 'into', 'bytes', 'into', 'bytes', 'bytes', 'into', 'async', 'into'];
    for (let i = 0; i < kinds.length; i++) {
      const size = sizes[i % sizes.length]!;
      const msg = Buffer.alloc(size, i + 1);
      msg[size - 1] = 0xee;
      a.sendBytes(msg);
      let got: Buffer;
      if (kinds[i] === 'into') {
        const n = b.recvBytesIntoSync(target, 7);
        got = Buffer.from(target.subarray(7, 7 + n));
      } else {
        got = kinds[i] === 'bytes' ? b.recvBytesSync() : await b.recvBytes();
      }
      expect(got.equals(msg)).toBe(true);
    }
    a.close();
    b.close();
  });

  it('throws BufferTooShort holding the message when it does not fit, and stays usable', async () => {
    const [a, b] = Pipe();
    a.sendBytes(Buffer.from('too long'));
    let err: unknown;
    try {
      b.recvBytesIntoSync(Buffer.alloc(8), 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BufferTooShort);
    expect((err as Error).message).toMatch(/a message of 8 bytes does not fit in 6 bytes from offset 2/);
    expect((err as BufferTooShort).data.toString()).toBe('too long');
    a.sendBytes(Buffer.from('ok'));
    expect(b.recvBytesSync().toString()).toBe('ok');
    a.sendBytes(Buffer.from('four'));
    await expect(b.recvBytesInto(Buffer.alloc(3))).rejects.toBeInstanceOf(BufferTooShort);
    expect(() => b.recvBytesIntoSync(Buffer.alloc(3), 4)).toThrow(/offset 4 is past the end of the 3-byte buffer/);
    a.close();
    b.close();
  });
});
