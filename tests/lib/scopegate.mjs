// What the node test suites share: a scopegate server started on an ephemeral port in a fresh
// data folder, tracked so it never outlives the test process, and the CLI's arguments for its store.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// The binary run.sh built and named (tests/lib/bin.sh); no default, so a stale one is never tested.
export const BIN = process.env.SCOPEGATE_BIN || '';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Servers this process started: killed if the process ends before a test's after() hook runs.
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.once(sig, () => {
    for (const p of live) p.kill('SIGKILL');
    process.exit(128 + n);
  });
}

/** Waits for the scopegate binary (another engineer may be rebuilding it). */
export async function waitForBinary(timeoutMs = Number(process.env.SCOPEGATE_BIN_WAIT_MS || 300_000)) {
  if (!BIN) throw new Error('SCOPEGATE_BIN is not set: run the suite through its run.sh, which builds the binary');
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      fs.accessSync(BIN, fs.constants.X_OK);
      return BIN;
    } catch {
      if (Date.now() > deadline) {
        throw new Error(`scopegate binary not found or not executable: ${BIN} (build it, or set SCOPEGATE_BIN)`);
      }
      if (!said) {
        console.error(`# waiting for ${BIN} to appear...`);
        said = true;
      }
      await sleep(2000);
    }
  }
}

/** The environment for scopegate processes: none of the caller's SCOPEGATE_* settings leak in. */
export function serverEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SCOPEGATE_')) delete env[k];
  env.RUST_LOG = env.RUST_LOG || 'warn';
  return env;
}

export function storeArgs(dir) {
  return ['--data-dir', dir, '--database-url', `sqlite://${path.join(dir, 'scopegate.db')}`];
}

function launchOnce(dir, timeoutMs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, [...storeArgs(dir), 'serve', '--listen', '127.0.0.1:0', '--demo'], {
      env: serverEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        reject(err);
      } else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`scopegate did not report its URL within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
      timeoutMs,
    );
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      stdout += chunk;
      const m = /scopegate is serving (https:\/\/\S+)(?: \(public URL (\S+), issuer (\S+?)\))?/.exec(stdout);
      // Wait for the demo credentials too: the demo data is written before they are printed.
      if (m && /demo credentials are public/.test(stdout)) {
        finish(null, { proc, base: m[1], publicUrl: m[2] || m[1], issuer: m[3] || `${m[1]}/oauth`, stdout: () => stdout, stderr: () => stderr });
      }
    });
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    proc.on('error', (e) => finish(e));
    proc.on('exit', (code, sig) =>
      finish(Object.assign(new Error(`scopegate exited early (code ${code}, signal ${sig})\nstdout:\n${stdout}\nstderr:\n${stderr}`), { code: 'EARLY_EXIT' })),
    );
  });
}

/**
 * Starts `scopegate serve --demo` on an ephemeral port in a fresh temporary folder named after
 * `prefix`. Returns { proc, base, publicUrl, issuer, stdout(), stderr(), dir, cert, stop() }.
 */
export async function launchServer(prefix, { timeoutMs = 90_000 } = {}) {
  await waitForBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let started;
  let lastErr;
  // The binary may be replaced while we start it (ENOENT / ETXTBSY during a rebuild): retry.
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    try {
      started = await launchOnce(dir, timeoutMs);
    } catch (e) {
      lastErr = e;
      if (!['ENOENT', 'ETXTBSY', 'EACCES'].includes(e.code)) break;
      await sleep(3000);
      await waitForBinary();
    }
  }
  if (!started) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw lastErr;
  }
  const { proc } = started;
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return {
    ...started,
    dir,
    cert: path.join(dir, 'tls-cert.pem'),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
