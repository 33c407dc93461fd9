// Queue in one process: FIFO of structured clones, Empty/Full with their timeouts, qsize/empty/full,
// maxsize, options checking, and what close() does (API.md, Queues; Python's queue semantics).
import { describe, expect, it } from 'vitest';
import { Empty, Full, Queue } from '../../lib/index.js';

const elapsed = async (fn: () => Promise<unknown> | unknown): Promise<[unknown, number]> => {
  const t = performance.now();
  let r: unknown;
  try {
    r = await fn();
  } catch (e) {
    r = e;
  }
  return [r, performance.now() - t];
};

describe('Queue: put and get', () => {
  it('keeps FIFO order and structured-clone semantics through every put/get pair', async () => {
    const q = new Queue<unknown>();
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    const values: unknown[] = [
      1, -0, NaN, 2 ** 40, 'text', 'ünïcödé ✓', '', null, undefined, true, 12345678901234567890n,
      [1, 'a', [2]], { a: 1, b: { c: [null] } }, new Map([[1, { x: 1 }]]), new Set(['a']), new Date(5),
      /re/g, Buffer.from('buf'), new Float64Array([1.5, 2]), new Uint8Array(1000).fill(7), cyclic,
    ];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (i % 3 === 0) q.putSync(v);
      else if (i % 3 === 1) await q.put(v);
      else q.putNowait(v);
    }
    expect(q.qsize()).toBe(values.length);
    const out: unknown[] = [];
    for (let i = 0; i < values.length; i++) out.push(i % 3 === 0 ? q.getSync() : i % 3 === 1 ? await q.get() : q.getNowait());
    expect(out.slice(0, -1)).toEqual(values.slice(0, -1));
    expect(Object.is(out[1], -0)).toBe(true);
    const c = out.at(-1) as Record<string, unknown>;
    expect(c.self).toBe(c);
    expect(Buffer.isBuffer(out[17])).toBe(true);
    expect(q.empty()).toBe(true);
    q.close();
  });

  it('Buffers go straight into the ring and come out as exact Buffers of their own, unaffected by later writes', async () => {
    const q = new Queue<Buffer | Uint8Array>({ capacityBytes: 4096, maxsize: 1 });
    const whole = Buffer.from('0123456789abcdef');
    const odd = whole.subarray(3, 10); // an odd offset into a larger buffer
    q.putSync(odd);
    const got = q.getSync() as Buffer;
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(got.toString()).toBe('3456789');
    expect(got.byteOffset).toBe(0);
    expect(got.buffer.byteLength).toBe(7);
    // A put that has to wait (maxsize 1, queue full) owns a copy: writes after put() returned are not sent.
    q.putSync(Buffer.from('first'));
    const later = Buffer.from('before');
    const pending = q.put(later);
    later.write('AFTER!');
    expect((q.getSync() as Buffer).toString()).toBe('first');
    await pending;
    expect((q.getSync() as Buffer).toString()).toBe('before');
    // A Uint8Array stays a Uint8Array; an empty Buffer and one too big for the ring (spilled) go through too.
    q.putSync(new Uint8Array([1, 2, 3]));
    const u = q.getSync();
    expect(Buffer.isBuffer(u)).toBe(false);
    expect([...(u as Uint8Array)]).toEqual([1, 2, 3]);
    q.putSync(Buffer.alloc(0));
    expect((q.getSync() as Buffer).length).toBe(0);
    const big = Buffer.alloc(10_000, 9);
    q.putSync(big);
    expect((q.getSync() as Buffer).equals(big)).toBe(true);
    q.close();
  });

  it('gets what was put while a get was waiting, async and with a timeout', async () => {
    const q = new Queue<number>();
    const pending = q.get();
    const timed = q.get({ timeout: 10_000 });
    setTimeout(() => {
      q.putSync(1);
      q.putSync(2);
    }, 50);
    expect(await pending).toBe(1);
    expect(await timed).toBe(2);
    q.close();
  });

  it('a message that cannot be cloned throws a TypeError naming it at the sender; the queue goes on', () => {
    const q = new Queue();
    expect(() => q.putSync({ ok: 1, fn: () => 1 })).toThrow(/Queue\.putSync: cannot send value at msg\.fn \(a function\)/);
    expect(q.qsize()).toBe(0);
    q.putSync('after');
    expect(q.getSync()).toBe('after');
    q.close();
  });
});

describe('Queue: Empty and Full', () => {
  it('getNowait, get({ block: false }), get({ timeout }) on an empty queue throw/reject Empty after their wait', async () => {
    const q = new Queue();
    expect(() => q.getNowait()).toThrow(Empty);
    expect(() => q.getNowait()).toThrow('Queue.getNowait(): the queue is empty');
    expect(() => q.getSync({ block: false })).toThrow(Empty);
    await expect(q.get({ block: false })).rejects.toThrow(Empty);
    const [e1, ms1] = await elapsed(() => q.getSync({ timeout: 100 }));
    expect(e1).toBeInstanceOf(Empty);
    expect((e1 as Error).message).toBe('Queue.getSync(): no item arrived within 100 ms');
    expect(ms1).toBeGreaterThanOrEqual(90);
    expect(ms1).toBeLessThan(5000);
    const [e2, ms2] = await elapsed(() => q.get({ timeout: 100 }));
    expect(e2).toBeInstanceOf(Empty);
    expect((e2 as Error).message).toBe('Queue.get(): no item arrived within 100 ms');
    expect(ms2).toBeGreaterThanOrEqual(90);
    q.close();
  });

  it('maxsize: full(), putNowait/put({ timeout }) throw/reject Full, a get makes room', async () => {
    const q = new Queue<number>({ maxsize: 2 });
    expect(q.maxsize).toBe(2);
    q.putSync(1);
    expect(q.full()).toBe(false);
    await q.put(2);
    expect(q.full()).toBe(true);
    expect(q.qsize()).toBe(2);
    expect(() => q.putNowait(3)).toThrow(Full);
    expect(() => q.putNowait(3)).toThrow('Queue.putNowait(): the queue is full (it holds its maxsize of 2 items); get() items from it, or put() with a timeout to wait for room');
    expect(() => q.putSync(3, { block: false })).toThrow(Full);
    const [e, ms] = await elapsed(() => q.put(3, { timeout: 100 }));
    expect(e).toBeInstanceOf(Full);
    expect((e as Error).message).toMatch(/^Queue\.put\(\): the queue stayed full for 100 ms \(it holds its maxsize of 2 items\)/);
    expect(ms).toBeGreaterThanOrEqual(90);
    const [e2] = await elapsed(() => q.putSync(3, { timeout: 50 }));
    expect(e2).toBeInstanceOf(Full);
    // A put waiting for room goes in once a get makes some.
    const waiting = q.put(3, { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(q.getSync()).toBe(1);
    await waiting;
    expect([q.getSync(), q.getSync()]).toEqual([2, 3]);
    expect(q.empty()).toBe(true);
    q.close();
  });

  it('a ring with no room for an item is full too, whatever the count', () => {
    const q = new Queue({ capacityBytes: 1024 });
    const item = Buffer.alloc(300);
    q.putSync(item);
    q.putSync(item);
    q.putSync(item);
    expect(() => q.putNowait(item)).toThrow(/its 1024-byte ring has no room for this 306-byte item/);
    expect(q.qsize()).toBe(3);
    q.getSync();
    q.putNowait(item);
    q.close();
  });

  it('maxsize 0 or less is unbounded, as in Python', () => {
    for (const maxsize of [0, -1]) {
      const q = new Queue({ maxsize });
      for (let i = 0; i < 1000; i++) q.putNowait(i);
      expect(q.full()).toBe(false);
      expect(q.qsize()).toBe(1000);
      q.close();
    }
  });
});

describe('Queue: options and close', () => {
  it('rejects bad options and bad timeouts with messages naming them', () => {
    expect(() => new Queue({ maxsize: 1.5 })).toThrow('Queue: maxsize must be an integer (0 or less: no limit), got 1.5');
    expect(() => new Queue({ capacityBytes: 0 })).toThrow(/Queue: capacityBytes must be an integer from 1 to 1073741824/);
    expect(() => new Queue({ capacityBytes: 2 ** 31 })).toThrow(RangeError);
    expect(() => new Queue({ spinMs: -1 })).toThrow(/Queue: spinMs must be a number of milliseconds >= 0/);
    expect(() => new Queue(7 as never)).toThrow(/Queue: expected options like \{ maxsize, capacityBytes \}/);
    const q = new Queue();
    expect(() => q.getSync({ timeout: 'soon' as never })).toThrow(/Queue\.getSync\(\): the timeout must be a number of milliseconds/);
    q.close();
  });

  it('capacityBytes is rounded up to a power of two, at least 1 KiB; the default is 1 MiB', () => {
    expect(new Queue().capacityBytes).toBe(1 << 20);
    expect(new Queue({ capacityBytes: 5000 }).capacityBytes).toBe(8192);
    expect(new Queue({ capacityBytes: 1 }).capacityBytes).toBe(1024);
  });

  it('close(): idempotent, every later call throws naming the queue, pending waits of this object reject', async () => {
    const q = new Queue();
    const pending = q.get();
    const caught = pending.catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 20));
    q.close();
    q.close();
    const e = await caught;
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toBe('Queue.get(): the queue is closed (close() was called on this Queue object in this process); use an open one');
    for (const call of [() => q.putSync(1), () => q.getNowait(), () => q.qsize(), () => q.empty(), () => q.full(), () => q.maxsize]) {
      expect(call).toThrow(/the queue is closed/);
    }
    await expect(q.put(1)).rejects.toThrow('Queue.put(): the queue is closed');
    await expect(q.get()).rejects.toThrow('Queue.get(): the queue is closed');
    expect(String(q)).toBe('<Queue(closed)>');
  });

  it('a pending put waiting for room rejects when the queue is closed', async () => {
    const q = new Queue({ maxsize: 1 });
    q.putSync(0);
    const pending = q.put(1).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 20));
    q.close();
    expect(((await pending) as Error).message).toMatch(/^Queue\.put\(\): the queue is closed/);
  });

  it('[Symbol.dispose] closes', () => {
    let q: Queue | undefined;
    {
      using inner = new Queue();
      q = inner;
      inner.putSync(1);
    }
    expect(() => q!.qsize()).toThrow(/closed/);
  });

  it('a blocking call while an async one of the same queue waits in this thread throws instead of hanging', async () => {
    const q = new Queue();
    const pending = q.get().catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 20));
    expect(() => q.getSync()).toThrow(/a get\(\) of this queue is waiting in this thread/);
    expect(() => q.getNowait()).toThrow(Empty);
    q.putSync('x');
    expect(await pending).toBe('x');
    q.close();
  });
});
