// ShareableList: every item type round trips, slots keep their size, Python's layout, errors,
// and another process attaches by name or receives it as a handle.
import { afterEach, describe, expect, it } from 'vitest';
import { ShareableList, SharedMemory } from '../../lib/index.js';
import { runNodeOk } from '../helpers/child.js';

const made: ShareableList[] = [];
function list(values: Iterable<unknown> | null, options?: { name?: string }): ShareableList {
  const l = new ShareableList(values as never, options);
  made.push(l);
  return l;
}
afterEach(() => {
  for (const l of made.splice(0)) {
    l.close();
    try {
      l.unlink();
    } catch {
      // a test unlinked it
    }
  }
});

describe('ShareableList', () => {
  it('round trips numbers, BigInts, booleans, strings, Buffers and null, keeping number vs BigInt', () => {
    const items = [0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1.5, -0, NaN, Infinity, 1e300,
      0n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 64n - 1n, 5n,
      true, false, '', 'a', 'exactly8', 'ünïcödé ✓ 😀', Buffer.from([1, 2, 3]), new Uint8Array([9]), null];
    const l = list(items);
    expect(l.length).toBe(items.length);
    const back = l.toArray();
    expect(back.length).toBe(items.length);
    items.forEach((x, i) => {
      const y = back[i];
      if (x instanceof Uint8Array) expect(Buffer.from(x).equals(y as Buffer)).toBe(true);
      else expect(Object.is(x, y) || (typeof x === 'bigint' && x === y)).toBe(true);
    });
    expect(back[22]).toBeInstanceOf(Buffer);
    expect([...l]).toEqual(back);
    expect(l.get(-1)).toBeNull();
    expect(l.get(-items.length)).toBe(0);
  });

  it("uses Python's formats: q for safe integers, d for other numbers, =q/=Q for BigInts, <n>s slots in multiples of 8", () => {
    const l = list([1, 2.5, 2 ** 60, 3n, 2n ** 63n, true, null, '', 'abcdefgh', Buffer.alloc(3, 1)]);
    expect(l.format).toBe('qdd=q=Qxxxxxxx?xxxxxx?x8s16s8s');
    // Header: N, then N + 1 offsets.
    const b = l.shm.buf;
    expect(b.readBigInt64LE(0)).toBe(10n);
    expect(l.shm.size).toBe(8 + 8 * 11 + (8 * 9 + 16) + 8 * 10 + 10);
  });

  it('set: any type fits an 8-byte slot; a string or Buffer keeps its slot size and a longer one throws', () => {
    const l = list(['hello', 7, null]);
    l.set(0, 'hello w!'); // 'hello' got an 8-byte slot: 8 bytes fit
    expect(l.get(0)).toBe('hello w!');
    expect(() => l.set(0, 'hello world')).toThrow('ShareableList.set(0, …): the string takes 11 bytes, but item 0 has room for 8 (items keep the size they had at creation)');
    l.set(0, 42n);
    expect(l.get(0)).toBe(42n);
    l.set(0, Buffer.from('bytes'));
    expect(l.get(0)).toEqual(Buffer.from('bytes'));
    l.set(1, 'eight ch');
    expect(l.get(1)).toBe('eight ch');
    l.set(1, 3.5);
    expect(l.get(1)).toBe(3.5);
    l.set(2, true);
    expect(l.get(2)).toBe(true);
    l.set(-1, null);
    expect(l.get(2)).toBeNull();
    expect(l.format).toBe('8sdxxxxxx?x');
  });

  it("trailing NULs of strings and Buffers are dropped on the way out, as in Python's layout", () => {
    const l = list(['a\0\0', Buffer.from([1, 0, 0])]);
    expect(l.get(0)).toBe('a');
    expect(l.get(1)).toEqual(Buffer.from([1]));
  });

  it('index and count: equality by value (1 and 1n are the same item, Buffers by bytes)', () => {
    const l = list([1, 'x', 1n, Buffer.from('b'), true, 'x', null]);
    expect(l.index('x')).toBe(1);
    expect(l.count('x')).toBe(2);
    expect(l.count(1)).toBe(2);
    expect(l.index(Buffer.from('b'))).toBe(3);
    expect(l.index(null)).toBe(6);
    expect(l.count(2)).toBe(0);
    expect(() => l.index('nope')).toThrow("ShareableList.index(): 'nope' is not in the list");
  });

  it('clear errors: out-of-range indices, unsupported items, items too large for the layout', () => {
    const l = list([1, 2]);
    expect(() => l.get(2)).toThrow('ShareableList.get(2): index out of range for length 2');
    expect(() => l.set(-3, 1)).toThrow(RangeError);
    expect(() => l.get(0.5)).toThrow(/the index must be an integer/);
    expect(() => l.set(0, undefined as never)).toThrow(/not undefined \(use null\)/);
    expect(() => l.set(0, {} as never)).toThrow(/holds numbers, BigInts, booleans, strings, Buffers\/Uint8Arrays and null, not an Object/);
    expect(() => l.set(0, 2n ** 64n)).toThrow(/does not fit in 64 bits/);
    expect(() => new ShareableList([{ a: 1 }] as never)).toThrow(/item 0: a ShareableList holds/);
    expect(() => new ShareableList(['x'.repeat(10_000_000)])).toThrow(/item 0: 10000000 bytes is more than an item of a ShareableList holds/);
    expect(() => new ShareableList('abc' as never)).toThrow(/expected an iterable of items/);
  });

  it('an empty list; attaching by name; a segment that is not a list is refused and closed', () => {
    const empty = list(null);
    expect(empty.length).toBe(0);
    expect(empty.toArray()).toEqual([]);
    const named = list([1, 'a'], { name: `mp-sl-${process.pid}` });
    expect(named.shm.name).toBe(`mp-sl-${process.pid}`);
    const again = list(null, { name: named.shm.name });
    expect(again.toArray()).toEqual([1, 'a']);
    again.set(0, 2);
    expect(named.get(0)).toBe(2);
    expect(String(named)).toBe(`ShareableList([ 2, 'a' ], name='mp-sl-${process.pid}')`);
    const junk = new SharedMemory({ create: true, size: 64 });
    junk.buf.fill(0xff);
    try {
      expect(() => new ShareableList(null, { name: junk.name })).toThrow(`ShareableList: the segment '${junk.name}' does not hold a ShareableList (a length of -1)`);
    } finally {
      junk.close();
      junk.unlink();
    }
  });

  it('close() ends access; using it after throws naming the SharedMemory; Symbol.dispose closes', () => {
    const l = new ShareableList([1]);
    l[Symbol.dispose]();
    expect(() => l.get(0)).toThrow(`SharedMemory '${l.shm.name}' is closed`);
    expect(String(l)).toBe(`ShareableList(<closed>, name='${l.shm.name}')`);
    l.unlink();
  });

  it('another process attaches by name, or receives it in Process args: writes are seen both ways', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, ShareableList } from LIB;
      const l = new ShareableList([0, 'parent', null, 1.5]);
      const [here, there] = Pipe();
      const p = new Process({
        target: async (name, handle, conn) => {
          const { ShareableList } = await import('multiproc');
          const byName = new ShareableList(null, { name });
          const seen = byName.toArray();
          byName.set(0, 100);
          handle.set(1, 'child!');
          conn.send({ seen, sameShm: handle.shm.name === name });
          await conn.recv();
          conn.send([byName.get(2), handle.get(3)]);
          byName.close();
          handle.close();
        },
        args: [l.shm.name, l, there],
      });
      p.start();
      const first = await here.recv();
      const now = l.toArray();
      l.set(2, 'back');
      l.set(3, -2n);
      here.send('go');
      const second = await here.recv();
      await p.join();
      console.log(JSON.stringify({ first, now, second: second.map(String), code: p.exitCode }));
      l.close();
      l.unlink();
    `);
    expect(JSON.parse(out)).toEqual({
      first: { seen: [0, 'parent', null, 1.5], sameShm: true },
      now: [100, 'child!', null, 1.5],
      second: ['back', '-2'],
      code: 0,
    });
  });
});
