// CPython's multiprocessing.shared_memory and ours attach to each other's segments by name, and
// read each other's ShareableList (the same layout byte for byte).
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SharedMemory, ShareableList } from '../../lib/index.js';

// Python's SharedMemory registers a segment it merely attaches to with its resource tracker (and
// would unlink it when it exits: CPython issue 82300), so the snippets unregister what they attach.
const UNTRACK = `
from multiprocessing import resource_tracker
def attach(cls, name):
    obj = cls(name=name)
    shm = obj.shm if hasattr(obj, 'shm') else obj
    resource_tracker.unregister(shm._name, 'shared_memory')
    return obj
`;

function python(code: string): string {
  const r = spawnSync('python3', ['-c', UNTRACK + code], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python3 exited with ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** Runs a Python snippet that creates something, prints a line, and waits for a line on stdin. */
async function pythonHolding(code: string): Promise<{ line: string; release(): Promise<string> }> {
  const p = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const line = await new Promise<string>((resolve, reject) => {
    p.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    p.on('exit', (c) => reject(new Error(`python3 exited with ${c}: ${err}`)));
  });
  return {
    line,
    release: () =>
      new Promise((resolve, reject) => {
        p.removeAllListeners('exit');
        p.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`python3 exited with ${c}: ${err}`))));
        p.stdin.end('\n');
      }),
  };
}

describe('interoperability with CPython', () => {
  it('Python attaches to our SharedMemory by name: each sees what the other wrote', () => {
    const shm = new SharedMemory({ create: true, size: 256 });
    try {
      shm.buf.write('from node', 0);
      const out = python(`
from multiprocessing import shared_memory
s = attach(shared_memory.SharedMemory, ${JSON.stringify(shm.name)})
print(bytes(s.buf[:9]).decode(), s.size >= 256, s.name)
s.buf[100:111] = b'from python'
s.close()
`);
      expect(out.trim()).toBe(`from node True ${shm.name}`);
      expect(shm.buf.toString('utf8', 100, 111)).toBe('from python');
    } finally {
      shm.close();
      shm.unlink();
    }
  });

  it("we attach to Python's SharedMemory by its name (no leading slash) and write into it", async () => {
    const py = await pythonHolding(`
from multiprocessing import shared_memory
import sys
s = shared_memory.SharedMemory(create=True, size=64)
s.buf[:6] = b'python'
print(s.name, flush=True)
sys.stdin.readline()
print(bytes(s.buf[8:12]).decode())
s.close()
s.unlink()
`);
    const name = py.line.trim();
    expect(name).toMatch(/^psm_/);
    const shm = new SharedMemory({ name });
    expect(shm.buf.toString('utf8', 0, 6)).toBe('python');
    shm.buf.write('node', 8);
    shm.close();
    const out = await py.release();
    expect(out.split('\n')[1]).toBe('node');
    expect(existsSync(`/dev/shm/${name}`)).toBe(false);
  });

  it('Python reads and writes our ShareableList', () => {
    const l = new ShareableList([7, 2.5, 'héllo', Buffer.from('ab'), null, true, 10n, 2 ** 60, '']);
    try {
      const out = python(`
from multiprocessing import shared_memory
l = attach(shared_memory.ShareableList, ${JSON.stringify(l.shm.name)})
print(repr(list(l)))
l[0] = 99; l[2] = 'py'; l[4] = 3.25; l[5] = False; l[6] = None; l[3] = b'xyz'
l.shm.close()
`);
      expect(out.trim()).toBe("[7, 2.5, 'héllo', b'ab', None, True, 10, 1.152921504606847e+18, '']");
      expect(l.toArray()).toEqual([99, 2.5, 'py', Buffer.from('xyz'), 3.25, false, null, 2 ** 60, '']);
    } finally {
      l.close();
      l.unlink();
    }
  });

  it("we read and write Python's ShareableList", async () => {
    const py = await pythonHolding(`
from multiprocessing import shared_memory
import sys
l = shared_memory.ShareableList([1, 2.5, 'text', b'by', None, True, 2**62, -3])
print(l.shm.name, flush=True)
sys.stdin.readline()
print(repr(list(l)))
l.shm.close()
l.shm.unlink()
`);
    const l = new ShareableList(null, { name: py.line.trim() });
    expect(l.toArray()).toEqual([1, 2.5, 'text', Buffer.from('by'), null, true, 2n ** 62n, -3]);
    l.set(0, 'x');
    l.set(6, 5);
    l.set(7, 1n);
    l.set(2, 'ü');
    l.close();
    const out = await py.release();
    expect(out.split('\n')[1]).toBe("['x', 2.5, 'ü', b'by', None, True, 5, 1]");
  });
});
