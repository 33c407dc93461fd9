// SharedMemory: create, attach, close, unlink, the 0600 mode, clear errors, and how it travels.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { SharedMemory } from '../../lib/index.js';
import { decode, encode } from '../../lib/codec.js';
import { openFds, runNodeOk } from '../helpers/child.js';

const mapped = (name: string) => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(`/dev/shm/${name}`)).length;
const tick = () => new Promise((r) => setImmediate(r));

describe('SharedMemory in one process', () => {
  it('create without a name: a fresh name, zeroed bytes, a Buffer over the mapping itself', () => {
    const a = new SharedMemory({ create: true, size: 4096 });
    try {
      expect(a.name).toMatch(/^mp_[0-9a-f]{12}$/);
      expect(a.size).toBe(4096);
      expect(Buffer.isBuffer(a.buf)).toBe(true);
      expect(a.buf.length).toBe(4096);
      expect(a.buf.every((x) => x === 0)).toBe(true);
      expect(existsSync(`/dev/shm/${a.name}`)).toBe(true);
      const b = new SharedMemory({ name: a.name });
      expect(b.size).toBe(4096);
      a.buf.write('through the mapping', 100);
      expect(b.buf.toString('utf8', 100, 119)).toBe('through the mapping');
      b.buf[4095] = 9;
      expect(a.buf[4095]).toBe(9);
      // The same Buffer each time: zero-copy, no new view per access.
      expect(a.buf).toBe(a.buf);
      b.close();
      expect(String(a)).toBe(`SharedMemory('${a.name}', size=4096)`);
    } finally {
      a.close();
      a.unlink();
    }
  });

  it('a name of our own (a leading slash is accepted and dropped); a string alone attaches', () => {
    const name = `mp-test-${process.pid}-${Date.now()}`;
    const a = new SharedMemory({ name: '/' + name, create: true, size: 10 });
    try {
      expect(a.name).toBe(name);
      const b = new SharedMemory(name);
      expect(b.size).toBe(10);
      b.close();
    } finally {
      a.close();
      a.unlink();
    }
  });

  it('the segment is created 0600, also under a umask of 0', async () => {
    const out = await runNodeOk(`
      import { SharedMemory } from LIB;
      import { statSync } from 'node:fs';
      process.umask(0);
      const shm = new SharedMemory({ create: true, size: 64 });
      const st = statSync('/dev/shm/' + shm.name);
      console.log(JSON.stringify({ mode: (st.mode & 0o777).toString(8), uid: st.uid === process.getuid(), size: st.size }));
      shm.close();
      shm.unlink();
    `);
    expect(JSON.parse(out)).toEqual({ mode: '600', uid: true, size: 64 });
    const mine = new SharedMemory({ create: true, size: 1 });
    expect(statSync(`/dev/shm/${mine.name}`).mode & 0o777).toBe(0o600);
    mine.close();
    mine.unlink();
  });

  it('opening a name that does not exist throws naming it (code ENOENT); creating an existing one throws (EEXIST)', () => {
    const missing = `mp-missing-${process.pid}`;
    expect(() => new SharedMemory({ name: missing })).toThrow(`SharedMemory: no segment named '${missing}' exists`);
    try {
      new SharedMemory({ name: missing });
    } catch (e) {
      expect((e as { code: string }).code).toBe('ENOENT');
    }
    const a = new SharedMemory({ create: true, size: 8 });
    try {
      expect(() => new SharedMemory({ name: a.name, create: true, size: 8 })).toThrow(`SharedMemory: a segment named '${a.name}' already exists; attach to it with new SharedMemory({ name: '${a.name}' })`);
      try {
        new SharedMemory({ name: a.name, create: true, size: 8 });
      } catch (e) {
        expect((e as { code: string }).code).toBe('EEXIST');
      }
      // The failed create did not take the name from its owner.
      expect(existsSync(`/dev/shm/${a.name}`)).toBe(true);
    } finally {
      a.close();
      a.unlink();
    }
  });

  it('bad options are refused before anything is made', () => {
    expect(() => new SharedMemory({ create: true })).toThrow(/creating a segment needs a size > 0/);
    expect(() => new SharedMemory({ create: true, size: 0 })).toThrow(RangeError);
    expect(() => new SharedMemory({ create: true, size: -1 })).toThrow(/size must be an integer >= 0, got -1/);
    expect(() => new SharedMemory({ create: true, size: 1.5 })).toThrow(RangeError);
    expect(() => new SharedMemory()).toThrow(/give the name of an existing segment, or create: true/);
    expect(() => new SharedMemory({ name: 'a/b' })).toThrow(/"a\/b" is not a valid name/);
    expect(() => new SharedMemory({ name: '' })).toThrow(TypeError);
    expect(() => new SharedMemory({ name: 'x'.repeat(300), create: true, size: 1 })).toThrow(/at most 248 are allowed/);
    expect(() => new SharedMemory({ name: 5 as never })).toThrow(/name must be a string/);
  });

  it('close(): the fd and the mapping go, buf throws naming the object, Buffers taken before read as empty', async () => {
    const before = openFds().length;
    const a = new SharedMemory({ create: true, size: 1 << 20 });
    const name = a.name;
    const taken = a.buf;
    taken[0] = 1;
    expect(openFds().length).toBe(before + 1);
    expect(mapped(name)).toBe(1);
    a.close();
    expect(a.closed).toBe(true);
    expect(() => a.buf).toThrow(`SharedMemory '${name}' is closed`);
    expect(taken.length).toBe(0);
    expect(taken[0]).toBeUndefined();
    a.close(); // idempotent
    expect(openFds().length).toBe(before);
    await tick();
    expect(mapped(name)).toBe(0);
    // The segment itself lives on until unlinked.
    const again = new SharedMemory({ name });
    expect(again.buf[0]).toBe(1);
    again[Symbol.dispose]();
    expect(again.closed).toBe(true);
    a.unlink();
    expect(existsSync(`/dev/shm/${name}`)).toBe(false);
  });

  it('unlink(): the name goes (attach fails, a second unlink throws), the memory stays for those holding it', () => {
    const a = new SharedMemory({ create: true, size: 16 });
    const b = new SharedMemory({ name: a.name });
    a.unlink();
    expect(existsSync(`/dev/shm/${a.name}`)).toBe(false);
    expect(() => new SharedMemory({ name: a.name })).toThrow(/no segment named/);
    a.buf[3] = 7;
    expect(b.buf[3]).toBe(7);
    expect(() => b.unlink()).toThrow(`SharedMemory '${a.name}': already unlinked`);
    a.close();
    b.close();
  });
});

describe('SharedMemory across processes', () => {
  it('in Process args it arrives open (by fd): the child writes, the parent reads; it outlives the name', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, SharedMemory } from LIB;
      const shm = new SharedMemory({ create: true, size: 1024 });
      const [here, there] = Pipe();
      const p = new Process({
        target: async (shm, conn) => {
          await conn.recv(); // the parent has unlinked the name by now
          shm.buf.write('hello from the child');
          conn.send({ name: shm.name, size: shm.size, cls: shm.constructor.name });
          shm.close();
        },
        args: [shm, there],
      });
      p.start();
      shm.unlink();
      here.send('go');
      const info = await here.recv();
      await p.join();
      console.log(JSON.stringify({ info: { ...info, same: info.name === shm.name }, text: shm.buf.toString('utf8', 0, 20), code: p.exitCode }));
      shm.close();
    `);
    expect(JSON.parse(out)).toMatchObject({ info: { size: 1024, cls: 'SharedMemory', same: true }, text: 'hello from the child', code: 0 });
  });

  it('through a Connection to a running process, and into a Connection in the same one', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, SharedMemory } from LIB;
      const [here, there] = Pipe();
      const p = new Process({
        target: async (conn) => {
          const { shm } = await conn.recv();
          shm.buf[0] = 42;
          conn.send(shm.size);
          shm.close();
        },
        args: [there],
      });
      p.start();
      there.close();
      const shm = new SharedMemory({ create: true, size: 32 });
      here.send({ shm });
      const size = await here.recv();
      await p.join();
      const [a, b] = Pipe();
      a.send(shm);
      const got = b.recvSync();
      got.buf[1] = 43;
      const seen = [size, shm.buf[0], shm.buf[1], got.name === shm.name, got !== shm];
      got.close();
      shm.close();
      try { a.send(shm); } catch (e) { seen.push(e.message); }
      shm.unlink();
      console.log(JSON.stringify(seen));
    `);
    expect(JSON.parse(out)).toEqual([
      32, 42, 43, true, true,
      expect.stringMatching(/^SharedMemory\('mp_[0-9a-f]+', size=32, closed\) is closed and cannot be sent/),
    ]);
  });

  it('where a channel cannot carry fds it travels by name, and says so if the name is gone on arrival', () => {
    const shm = new SharedMemory({ create: true, size: 8 });
    try {
      // No fd list: what a channel without SCM_RIGHTS encodes with.
      const bytes = encode({ shm });
      const got = (decode(bytes) as { shm: SharedMemory }).shm;
      got.buf[0] = 5;
      expect(shm.buf[0]).toBe(5);
      got.close();
      const late = encode(shm);
      shm.unlink();
      expect(() => decode(late)).toThrow(`SharedMemory '${shm.name}' arrived by name but no longer exists: it was unlinked (or its creator ended) before this process attached`);
    } finally {
      shm.close();
    }
  });
});
