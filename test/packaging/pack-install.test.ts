// The published package: `npm pack` (prepack builds dist/ and prebuilds/), then install the
// tarball into fresh apps with compilers disabled and use it across two processes. Installing
// must never compile: the package ships a prebuilt binary per platform and no binding.gyp.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { installApp, listFiles, packProject, removeScratch, runScript, type App, type Packed } from '../helpers/pack.js';

const platformTag = `${process.platform}-${process.arch}`;
const crossArm64 = process.platform === 'linux' && process.arch === 'x64' && process.env.MULTIPROC_PREBUILD_CROSS !== '0'
  && spawnSync('sh', ['-c', 'command -v aarch64-linux-gnu-g++'], { stdio: 'ignore' }).status === 0;

// The app's two processes: the parent sends a structured message through one end of a Pipe(),
// the child (which got the other end as fd 3) echoes it back.
const PARENT = `
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Pipe } from 'multiproc';

const [conn, childEnd] = Pipe();
const child = spawn(process.execPath, [fileURLToPath(new URL('./child.mjs', import.meta.url)), ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', 'inherit', childEnd.fileno()],
});
const exited = new Promise((res) => child.on('exit', (code, signal) => res(code ?? signal)));
childEnd.close();

const sent = {
  text: 'héllo, wörld ✓',
  n: -1.5,
  ok: true,
  none: null,
  buf: Buffer.from([0, 1, 2, 127, 128, 253, 254, 255]),
  nested: [1, ['two', [3, { four: Buffer.from('four') }]], []],
};
conn.send(sent);
const got = await conn.recv();
const childExit = await exited;
conn.close();

// Which multiproc.node this process mapped (the loader's choice).
const loaded = process.platform === 'linux'
  ? [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith('multiproc.node')).map((l) => l.split(/\\s+/).pop()))]
  : [];
const plain = (v) => Buffer.isBuffer(v) ? { Buffer: [...v] } : v instanceof Uint8Array ? { [v.constructor.name]: [...v] }
  : Array.isArray(v) ? v.map(plain) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;
console.log(JSON.stringify({ childExit, equal: isDeepStrictEqual(got, sent), sent: plain(sent), got: plain(got), loaded }));
`;

const CHILD = `
import { Connection } from 'multiproc';
const c = new Connection(3);
c.send(await c.recv());
c.close();
`;

interface RoundTrip {
  childExit: number | string;
  equal: boolean;
  sent: unknown;
  got: unknown;
  loaded: string[];
}

async function roundTrip(app: App): Promise<RoundTrip> {
  writeFileSync(join(app.dir, 'parent.mjs'), PARENT);
  writeFileSync(join(app.dir, 'child.mjs'), CHILD);
  const r = await runScript(app.dir, 'parent.mjs');
  if (r.code !== 0) throw new Error(`parent.mjs exited with ${r.code ?? r.signal}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as RoundTrip;
}

let packed: Packed;

beforeAll(async () => {
  packed = await packProject();
  console.log(`npm pack (prepack included) took ${packed.seconds.toFixed(1)} s`);
}, 600_000);

afterAll(() => removeScratch());

describe('npm pack', () => {
  it('ships the compiled library and the prebuilt binary of this platform', () => {
    expect(packed.files).toContain('package/package.json');
    expect(packed.files).toContain('package/dist/index.js');
    expect(packed.files).toContain('package/dist/index.d.ts');
    expect(packed.files).toContain('package/dist/native.js');
    expect(packed.files).toContain(`package/prebuilds/${platformTag}/multiproc.node`);
    if (crossArm64) expect(packed.files).toContain('package/prebuilds/linux-arm64/multiproc.node');
    // Every binary lives in prebuilds/<platform>-<arch>/, where lib/native.ts looks.
    for (const f of packed.files.filter((f) => f.endsWith('.node'))) {
      expect(f).toMatch(/^package\/prebuilds\/[a-z0-9]+-[a-z0-9]+\/multiproc\.node$/);
    }
  });

  it('ships no sources of the addon, build output, tests or scripts', () => {
    const offending = packed.files.filter((f) =>
      f === 'package/binding.gyp' || /^package\/(native|build|test|lib|scripts|node_modules)\//.test(f) || f.endsWith('.gypi'));
    expect(offending).toEqual([]);
  });

  it('has no install-time scripts and does not declare itself a gyp package', () => {
    const scripts = packed.manifest.scripts ?? {};
    for (const s of ['preinstall', 'install', 'postinstall']) expect(scripts[s], `scripts.${s}`).toBeUndefined();
    expect(packed.manifest.gypfile).not.toBe(true);
    expect(packed.manifest.dependencies ?? {}).toEqual({});
  });
});

describe.each([
  { how: 'npm install', ignoreScripts: false },
  { how: 'npm install --ignore-scripts', ignoreScripts: true },
])('$how <tarball> with CC=false CXX=false', ({ ignoreScripts }) => {
  let app: App;

  beforeAll(async () => {
    app = await installApp(packed.tarball, { ignoreScripts });
  }, 300_000);

  it('compiles nothing: no build/ and only the shipped binaries', () => {
    expect(existsSync(join(app.pkg, 'package.json'))).toBe(true);
    expect(existsSync(join(app.pkg, 'build'))).toBe(false);
    const binaries = listFiles(app.pkg).filter((f) => f.endsWith('.node'));
    expect(binaries.sort()).toEqual(packed.files.filter((f) => f.endsWith('.node')).map((f) => f.slice('package/'.length)).sort());
    expect(app.log).not.toMatch(/node-gyp|gyp info|gyp ERR/);
  });

  it('round-trips a message through a Pipe() to a child process and back', async () => {
    const r = await roundTrip(app);
    expect(r.childExit).toBe(0);
    expect(r.got).toEqual(r.sent);
    expect(r.equal).toBe(true);
    if (process.platform === 'linux') {
      expect(r.loaded).toEqual([join(app.pkg, 'prebuilds', platformTag, 'multiproc.node')]);
    }
  });

  if (ignoreScripts) {
    it('without a binary for the platform, import fails saying how to build from source', async () => {
      const prebuilds = join(app.pkg, 'prebuilds');
      renameSync(prebuilds, `${prebuilds}.aside`);
      try {
        writeFileSync(join(app.dir, 'import.mjs'), `await import('multiproc');\nconsole.log('imported');\n`);
        const r = await runScript(app.dir, 'import.mjs');
        expect(r.code).not.toBe(0);
        expect(r.stdout).not.toContain('imported');
        expect(r.stderr).toContain(`multiproc: no native binary for ${platformTag}`);
        expect(r.stderr).toMatch(/build it from source/);
        expect(r.stderr).toContain('npm run build:native');
        expect(r.stderr).toContain('MULTIPROC_NATIVE');
      } finally {
        renameSync(`${prebuilds}.aside`, prebuilds);
      }
      // And back in place, it loads again.
      expect((await runScript(app.dir, 'import.mjs')).stdout).toContain('imported');
    });
  }
});

