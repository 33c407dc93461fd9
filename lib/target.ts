// Process and Pool targets: a self-contained function (sent by its source text, compiled once
// per process and cached by hash) or an export of a module (imported in the child).
import { createHash } from 'node:crypto';
import { isAbsolute, resolve, dirname, join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import vm from 'node:vm';

export type Target = ((...args: any[]) => unknown) | { module: string | URL; name: string };

export type TargetDesc =
  | { kind: 'function'; source: string; hash: string; name: string }
  | { kind: 'module'; specifier: string; name: string };

const described = new WeakMap<Function, TargetDesc>();

/** The wire form of a target, checked in this process so mistakes surface at the call. */
export function describeTarget(target: Target, what: string): TargetDesc {
  if (typeof target === 'function') {
    let d = described.get(target);
    if (!d) {
      const source = functionSource(target, what);
      d = { kind: 'function', source, hash: createHash('sha256').update(source).digest('hex').slice(0, 32), name: target.name || 'anonymous' };
      described.set(target, d);
    }
    return d;
  }
  if (target && typeof target === 'object' && 'module' in target && typeof target.name === 'string') {
    const m = target.module;
    let specifier: string;
    if (m instanceof URL) specifier = m.href;
    else if (typeof m !== 'string' || m === '') throw new TypeError(`${what}: target.module must be a file path, a URL or a package name`);
    else if (/^[a-z][a-z0-9+.-]*:/i.test(m) && !isAbsolute(m)) specifier = m; // already a URL (file:, data:, node:)
    else if (isAbsolute(m) || m.startsWith('./') || m.startsWith('../')) specifier = pathToFileURL(resolve(m)).href;
    else specifier = m; // a package name, resolved in the child from the parent's entry module
    return { kind: 'module', specifier, name: target.name };
  }
  throw new TypeError(`${what}: target must be a function or { module, name }, got ${target === null ? 'null' : typeof target}`);
}

function functionSource(fn: Function, what: string): string {
  const src = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src)) {
    throw new TypeError(`${what}: ${fn.name || 'the target'} is a native or bound function, which cannot be sent by source; wrap it in a function or use the { module, name } form`);
  }
  if (/^class\b/.test(src)) throw new TypeError(`${what}: a class cannot be a target; pass a function`);
  // Method shorthand (`{ run() {} }.run`) prints without `function`: make it an expression.
  for (const candidate of [src, `function ${src}`, src.replace(/^async\s+/, 'async function ')]) {
    try {
      new vm.Script(`(${candidate})`);
      return candidate;
    } catch {
      // try the next form
    }
  }
  throw new TypeError(`${what}: the source of ${fn.name || 'the target'} does not compile on its own; use the { module, name } form`);
}

/** The module URL a function target's `import()` calls resolve from: the parent's entry module. */
export function entryUrl(): string {
  const main = process.argv[1];
  return main ? pathToFileURL(resolve(main)).href : pathToFileURL(join(process.cwd(), '[eval]')).href;
}

const compiled = new Map<string, Function>();
let warningFiltered = false;

/** Turns a target description into a callable, in the process that runs it. */
export async function loadTarget(d: TargetDesc, entry: string): Promise<Function> {
  if (d.kind === 'module') {
    const mod = /^[a-z][a-z0-9+.-]*:/i.test(d.specifier) ? await import(d.specifier) : await importFrom(entry, d.specifier);
    const fn = (mod as Record<string, unknown>)[d.name];
    if (typeof fn !== 'function') {
      throw new TypeError(`target { module: '${d.specifier}', name: '${d.name}' }: the module has no exported function '${d.name}' (exports: ${Object.keys(mod as object).join(', ') || 'none'})`);
    }
    return fn;
  }
  let fn = compiled.get(d.hash);
  if (!fn) {
    fn = compileFunction(d, entry);
    compiled.set(d.hash, fn);
  }
  return fn;
}

/** The file name given to compiled function targets: beside the entry module, so `import()` resolves from there. */
export function targetFilename(entry: string, name: string): string {
  const dir = entry.startsWith('file:') ? dirname(fileURLToPath(entry)) : process.cwd();
  return join(dir, `[multiproc target ${name}]`);
}

function compileFunction(d: Extract<TargetDesc, { kind: 'function' }>, entry: string): Function {
  const loader = (vm as unknown as { constants?: { USE_MAIN_CONTEXT_DEFAULT_LOADER?: symbol } }).constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (loader && !warningFiltered) {
    // Node 20/22 flag this option experimental on first use; the warning is noise for our users.
    warningFiltered = true;
    const emit = process.emitWarning;
    process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
      const text = typeof warning === 'string' ? warning : warning?.message;
      if (text && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
      return (emit as Function).call(process, warning, ...rest);
    } as typeof process.emitWarning;
  }
  const script = new vm.Script(`(${d.source})`, {
    filename: targetFilename(entry, d.name),
    ...(loader ? { importModuleDynamically: loader as never } : {}),
  });
  return script.runInThisContext() as Function;
}

function importFrom(entry: string, specifier: string): Promise<unknown> {
  // A bare specifier resolves as the parent's entry module would resolve it.
  const loader = (vm as unknown as { constants?: { USE_MAIN_CONTEXT_DEFAULT_LOADER?: symbol } }).constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (!loader) return import(specifier);
  const script = new vm.Script(`(s) => import(s)`, { filename: targetFilename(entry, 'import'), importModuleDynamically: loader as never });
  return (script.runInThisContext() as (s: string) => Promise<unknown>)(specifier);
}

/**
 * If `err` says a function target used a name that does not exist in the child, an error that
 * says so and how to fix it; otherwise `err` itself.
 */
export function explainTargetError(err: unknown, d: TargetDesc, what: string): unknown {
  if (d.kind !== 'function' || !(err instanceof ReferenceError)) return err;
  const m = /^(\S+) is not defined$/.exec(err.message);
  if (!m || !String(err.stack).includes('[multiproc target ')) return err;
  const e = new ReferenceError(
    `${what}: ${d.name}() uses '${m[1]}', which does not exist in the child process. A function target is sent by its source text, ` +
      `so it must be self-contained: pass values in args, import modules inside it with await import(...), ` +
      `or use the { module, name } form to run an exported function of a module.`,
    { cause: err },
  );
  e.stack = `${e.name}: ${e.message}\n${String(err.stack).split('\n').slice(1).join('\n')}`;
  return e;
}
