// BaseManager subclasses: register(typeid, callable, { exposed, proxytype, methodToTypeid }) with a
// function, a class, or { module, name }; custom proxies travel and rebuild as their class.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BaseManager, BaseProxy, Process, RemoteError } from '../../lib/index.js';
import { root } from '../helpers/child.js';

const TARGETS = join(root, 'test', 'fixtures', 'manager-targets.mjs');

class CounterProxy extends BaseProxy {
  inc(by = 1): Promise<number> {
    return this._callMethod('inc', [by]);
  }
  get value(): Promise<number> {
    return this._callMethod('get');
  }
}

class MathsManager extends BaseManager {}
// A class, sent by its source: self-contained.
MathsManager.register('Maths', class Maths {
  add(a: number, b: number) { return a + b; }
  async slowMul(a: number, b: number) {
    await new Promise((r) => setTimeout(r, 10));
    return a * b;
  }
  fail() { throw new RangeError('no such number'); }
  _private() { return 1; }
});
// A function making a plain object; only some methods exposed; a proxy class of our own.
MathsManager.register('Counter', (start = 0) => {
  let n = start;
  return { inc: (by: number) => (n += by), get: () => n, reset: () => (n = 0) };
}, { exposed: ['inc', 'get'], proxytype: CounterProxy });
// { module, name } of an exported class.
MathsManager.register('Accumulator', { module: TARGETS, name: 'Accumulator' });
// A method whose result is shared in turn.
MathsManager.register('Factory', () => ({ counter: (start: number) => ({ inc: (by: number) => (start += by), get: () => start }) }), {
  methodToTypeid: { counter: 'Counter' },
});

type Maths = BaseProxy & { add(a: number, b: number): Promise<number>; slowMul(a: number, b: number): Promise<number>; fail(): Promise<never>; _private?: unknown };
interface MathsManager {
  Maths(): Promise<Maths>;
  Counter(start?: number): Promise<CounterProxy>;
  Accumulator(): Promise<BaseProxy & { add(x: number): Promise<number>; total(): Promise<number> }>;
  Factory(): Promise<BaseProxy & { counter(start: number): Promise<CounterProxy> }>;
}

let m: MathsManager;
beforeAll(async () => {
  m = new MathsManager();
  await m.start();
});
afterAll(() => m?.shutdown());

describe('registered types', () => {
  it('a class: its public methods are exposed (AutoProxy), sync and async ones', async () => {
    const maths = await m.Maths();
    expect(maths).toBeInstanceOf(BaseProxy);
    expect([...maths._exposed].sort()).toEqual(['add', 'fail', 'slowMul']);
    expect(await maths.add(2, 3)).toBe(5);
    expect(await maths.slowMul(4, 5)).toBe(20);
    expect(maths._private).toBeUndefined();
    const e = await maths.fail().catch((x) => x);
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.message).toMatch(/^Maths\.fail: RangeError: no such number \(raised in the manager server/);
    expect(e.cause.stack).toMatch(/at Maths\.fail/);
    await expect(maths._callMethod('_private')).rejects.toThrow(/AttributeError: method '_private' of Maths object is not exposed \(exposed: add, slowMul, fail\)/);
  });

  it('a function with exposed and a proxytype: the proxy class is ours, and it travels as that class', async () => {
    const c = await m.Counter(10);
    expect(c).toBeInstanceOf(CounterProxy);
    expect(await c.inc(5)).toBe(15);
    expect(await c.value).toBe(15);
    await expect(c._callMethod('reset')).rejects.toThrow(/method 'reset' of Counter object is not exposed \(exposed: inc, get\)/);
    const p = new Process({ target: async (c: any) => { await c.inc(100); }, args: [c] });
    p.start();
    await p.join();
    expect(p.exitCode).toBe(0);
    expect(await c.value).toBe(115);
  });

  it('{ module, name } of a class', async () => {
    const acc = await m.Accumulator();
    await acc.add(1);
    expect(await acc.add(2)).toBe(2);
    expect(await acc.total()).toBe(3);
  });

  it('methodToTypeid: a method returns a proxy of another type', async () => {
    const f = await m.Factory();
    const c = await f.counter(7);
    expect(c).toBeInstanceOf(CounterProxy);
    expect(await c.inc(1)).toBe(8);
  });

  it('register checks its arguments', () => {
    class Bad extends BaseManager {}
    expect(() => Bad.register('', null)).toThrow(/typeid must be a non-empty string/);
    expect(() => Bad.register('x', null, { exposed: 'add' as never })).toThrow(/exposed must be an array of method names/);
    expect(() => Bad.register('x', null, { proxytype: class {} as never })).toThrow(/proxytype must be a class extending BaseProxy/);
    expect(() => Bad.register('x', 42 as never)).toThrow(/target must be a function or \{ module, name \}/);
    // Registries are per class: a subclass's types are not its parent's.
    expect('x' in BaseManager.prototype).toBe(false);
    expect('Maths' in BaseManager.prototype).toBe(false);
  });

  it('a type whose callable fails to load fails start() with the reason', async () => {
    class Broken extends BaseManager {}
    Broken.register('Nope', { module: TARGETS, name: 'noSuchExport' });
    const b = new Broken();
    await expect(b.start()).rejects.toThrow(/Broken\.start: the manager process could not start serving: TypeError: target \{ module: '.*manager-targets\.mjs', name: 'noSuchExport' \}: the module has no exported function 'noSuchExport'/);
    await b.shutdown();
  });
});
