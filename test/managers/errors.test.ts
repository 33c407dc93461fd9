// Errors through a manager: raised in the server → RemoteError with the server's stack (our own
// classes keep theirs); what cannot travel is refused at the sender, naming the argument.
import { describe, expect, it } from 'vitest';
import { BaseManager, BrokenBarrierError, Empty, RemoteError, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';

let m: SyncManager;
useManager((x) => (m = x));

describe('errors raised in the server', () => {
  it('come back as RemoteError: message names the call, cause holds the server stack', async () => {
    const l = await m.list();
    const e = await l.get(0).catch((x) => x);
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.name).toBe('RemoteError');
    expect(e.message).toMatch(/^list\.get: IndexError: list\.get: list index 0 out of range \(length 0\) \(raised in the manager server at @\S+; its stack is in error\.cause\)$/);
    expect(e.cause).toBeInstanceOf(Error);
    expect(e.cause.name).toBe('IndexError');
    expect(e.cause.stack).toMatch(/^IndexError: list\.get: list index 0 out of range[\s\S]*\n\s+at SharedList\.get \(.*manager-objects\.js/);
    // The local stack is ours: it shows where the call was made.
    expect(e.stack).toMatch(/errors\.test\.ts/);
  });

  it('our own classes stay themselves (Empty, BrokenBarrierError), with the server stack as cause', async () => {
    const q = await m.Queue();
    const e = await q.getNowait().catch((x) => x);
    expect(e).toBeInstanceOf(Empty);
    expect(e.message).toBe('Queue.get: the queue is empty');
    expect(e.cause.stack).toMatch(/SharedQueue\.get/);
    const b = await m.Barrier(2, { action: () => { throw new Error('the action failed'); } });
    const other = b.wait();
    const last = await b.wait().catch((x) => x);
    expect(last).toBeInstanceOf(RemoteError);
    expect(last.message).toMatch(/^Barrier\.wait: Error: the action failed/);
    await expect(other).rejects.toBeInstanceOf(BrokenBarrierError);
    expect(await b.broken).toBe(true);
  });

  it('a method that is not exposed, an unknown object, an unknown typeid', async () => {
    const d = await m.dict();
    await expect(d._callMethod('constructor')).rejects.toThrow(/AttributeError: method 'constructor' of dict object is not exposed/);
    class Partial extends BaseManager {}
    Partial.register('dict');
    const p = new Partial({ address: m.address, authkey: m.authkey });
    await p.connect();
    // Registered here without a callable: the server makes it (it knows 'dict').
    expect(String(await (p as any).dict())).toMatch(/typeid 'dict'/);
    Partial.register('nothing');
    await expect((p as any).nothing()).rejects.toThrow(/Partial\.nothing: KeyError: the manager at @\S+ has no type 'nothing' \(it knows: dict, list, /);
  });
});

describe('what cannot travel', () => {
  it('an uncloneable argument is refused here, naming it; the proxy still works', async () => {
    const d = await m.dict();
    await expect(d.set('f', (() => 1) as never)).rejects.toThrow(/^dict\.set: cannot send value at args\[1\] \(a function\)/);
    await d.set('ok', 1);
    expect(await d.get('ok')).toBe(1);
  });

  it('a result that cannot be sent back is an error, not a lost reply', async () => {
    class Odd extends BaseManager {}
    Odd.register('Thing', () => ({ fn: () => () => 1, fine: () => 'fine' }));
    const o = new Odd();
    await o.start();
    const t = await (o as any).Thing();
    await expect(t.fn()).rejects.toThrow(/Thing\.fn: TypeError: the result cannot be sent back: cannot send value at result \(a function\)/);
    expect(await t.fine()).toBe('fine');
    await o.shutdown();
  });
});
