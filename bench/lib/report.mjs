// Turns the wrk outputs collected by bench/run into the printed table and
// bench/out/results.json.
//
// Usage: node report.mjs RUNS.jsonl META.json OUT.json
//   RUNS.jsonl  one line per wrk run: {"server","endpoint","path","method","file","exit_code"}
//   META.json   config, versions and memory figures gathered by bench/run
// Exit status: 0 when every run is valid (whatever the targets say),
//              1 when a run had non-2xx responses, socket errors, no requests
//              or an unreadable wrk output.
import { readFileSync, writeFileSync } from 'node:fs';

const [runsFile, metaFile, outFile] = process.argv.slice(2);
const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
const runLines = readFileSync(runsFile, 'utf8').split('\n').filter((l) => l.trim());

const UNIT_US = { us: 1, ms: 1e3, s: 1e6, m: 60e6 };

// Parse one wrk output: the BENCHJSON line printed by wrk/post.lua, or, if it
// is missing, wrk's own text report.
function parseWrk(text) {
  const m = text.match(/^BENCHJSON (\{.*\})\s*$/m);
  if (m) {
    try {
      const j = JSON.parse(m[1]);
      return {
        source: 'lua',
        requests: j.requests,
        rps: j.rps,
        p50_us: j.p50_us,
        p90_us: j.p90_us,
        p99_us: j.p99_us,
        max_us: j.max_us,
        mean_us: j.mean_us,
        non2xx: j.non2xx,
        socket_errors: j.errors.connect + j.errors.read + j.errors.write + j.errors.timeout,
        errors: j.errors,
        first_bad_status: j.first_bad_status || null,
        first_bad_body: j.first_bad_body || null,
      };
    } catch {
      // fall through to the text parser
    }
  }
  const num = (re) => {
    const r = text.match(re);
    return r ? Number(r[1]) : null;
  };
  const pct = (p) => {
    const r = text.match(new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'));
    return r ? Number(r[1]) * UNIT_US[r[2]] : null;
  };
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (rps === null) return null;
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = sock
    ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] }
    : { connect: 0, read: 0, write: 0, timeout: 0 };
  return {
    source: 'text',
    requests: num(/(\d+) requests in/),
    rps,
    p50_us: pct(50),
    p90_us: pct(90),
    p99_us: pct(99),
    max_us: null,
    mean_us: null,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
    socket_errors: errors.connect + errors.read + errors.write + errors.timeout,
    errors,
    first_bad_status: null,
    first_bad_body: null,
  };
}

const runs = [];
for (const line of runLines) {
  const r = JSON.parse(line);
  let text = '';
  try {
    text = readFileSync(r.file, 'utf8');
  } catch {
    // leave empty: reported as invalid below
  }
  const p = parseWrk(text);
  const problems = [];
  if (r.exit_code !== 0) problems.push(`wrk exited ${r.exit_code}`);
  if (!p) problems.push('no parsable wrk output');
  else {
    if (!p.requests) problems.push('no requests completed');
    if (p.non2xx) problems.push(`${p.non2xx} non-2xx responses (first: ${p.first_bad_status ?? '?'} ${p.first_bad_body ?? ''})`.trim());
    if (p.socket_errors) problems.push(`socket errors ${JSON.stringify(p.errors)}`);
  }
  runs.push({
    server: r.server,
    endpoint: r.endpoint,
    method: r.method,
    path: r.path,
    ...(p ?? {}),
    p50_ms: p?.p50_us != null ? p.p50_us / 1e3 : null,
    p90_ms: p?.p90_us != null ? p.p90_us / 1e3 : null,
    p99_ms: p?.p99_us != null ? p.p99_us / 1e3 : null,
    valid: problems.length === 0,
    problems,
    raw_output: r.file,
  });
}

const find = (server, endpoint) => runs.find((r) => r.server === server && r.endpoint === endpoint);
for (const r of runs) {
  const h = find(r.server, 'healthz');
  r.fraction_of_healthz = h && h.valid && r.valid && h.rps ? r.rps / h.rps : null;
}

function ratio(endpoint) {
  const a = find('scopegate', endpoint);
  const b = find('oidc-provider', endpoint);
  if (!a || !b || !a.valid || !b.valid || !b.rps) return null;
  return a.rps / b.rps;
}

const targets = meta.targets;
const ratios = { issuance: ratio('cc-issuance'), introspection: ratio('introspection') };
const hwmKb = meta.memory?.scopegate?.vmhwm_kb ?? null;
const hwmMiB = hwmKb != null ? hwmKb / 1024 : null;
const verdict = (value, ok) => (value == null ? 'N/A' : ok ? 'PASS' : 'FAIL');
const targetRows = [
  {
    name: 'issuance req/s, scopegate / oidc-provider',
    target: `>= ${targets.issuance_ratio}x`,
    value: ratios.issuance,
    display: ratios.issuance == null ? 'n/a' : `${ratios.issuance.toFixed(2)}x`,
    status: verdict(ratios.issuance, ratios.issuance >= targets.issuance_ratio),
  },
  {
    name: 'introspection req/s, scopegate / oidc-provider',
    target: `>= ${targets.introspection_ratio}x`,
    value: ratios.introspection,
    display: ratios.introspection == null ? 'n/a' : `${ratios.introspection.toFixed(2)}x`,
    status: verdict(ratios.introspection, ratios.introspection >= targets.introspection_ratio),
  },
  ...['forward-auth', 'decision-api'].map((e) => {
    const r = find('scopegate', e);
    const f = r ? r.fraction_of_healthz : null;
    return {
      name: `${e} req/s, share of scopegate's healthz`,
      target: '>= 50%',
      value: f,
      display: f == null ? 'n/a' : `${(f * 100).toFixed(1)}%`,
      status: verdict(f, f >= 0.5),
    };
  }),
  {
    name: 'scopegate peak RSS (VmHWM) under load',
    target: `<= ${targets.rss_mib} MiB`,
    value: hwmMiB,
    display: hwmMiB == null ? 'n/a' : `${hwmMiB.toFixed(1)} MiB`,
    status: verdict(hwmMiB, hwmMiB <= targets.rss_mib),
  },
];

// ---- printed report -------------------------------------------------------
const fmtMs = (v) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtRps = (v) => (v == null ? '-' : v.toFixed(0));
const header = ['endpoint', 'server', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'sock err', 'of healthz', 'valid'];
const rows = runs.map((r) => [
  r.endpoint,
  r.server,
  fmtRps(r.rps),
  fmtMs(r.p50_ms),
  fmtMs(r.p99_ms),
  r.non2xx ?? '-',
  r.socket_errors ?? '-',
  r.endpoint === 'healthz' ? '' : r.fraction_of_healthz == null ? '-' : `${(r.fraction_of_healthz * 100).toFixed(1)}%`,
  r.valid ? 'yes' : 'NO',
].map(String));
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const right = new Set([2, 3, 4, 5, 6, 7]);
const fmtRow = (row) => row.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');

const c = meta.config;
console.log('');
console.log(`scopegate benchmark: wrk -t${c.threads} -c${c.connections} -d${c.duration} (warm-up ${c.warmup}), HTTPS keep-alive on loopback, ${meta.machine.nproc} cores shared by server(s) and wrk`);
console.log('');
console.log(fmtRow(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) console.log(fmtRow(row));
console.log('');
const mem = meta.memory ?? {};
if (mem.scopegate) {
  console.log(`scopegate memory: VmHWM ${(mem.scopegate.vmhwm_kb / 1024).toFixed(1)} MiB (peak), idle RSS before load ${mem.scopegate.idle_rss_kb != null ? (mem.scopegate.idle_rss_kb / 1024).toFixed(1) : '?'} MiB`);
}
if (mem['oidc-provider']) {
  console.log(`oidc-provider memory: VmHWM ${(mem['oidc-provider'].vmhwm_kb / 1024).toFixed(1)} MiB (peak), idle RSS before load ${mem['oidc-provider'].idle_rss_kb != null ? (mem['oidc-provider'].idle_rss_kb / 1024).toFixed(1) : '?'} MiB`);
}
console.log('');
console.log('targets:');
const tw = Math.max(...targetRows.map((t) => t.name.length));
for (const t of targetRows) {
  console.log(`  ${t.name.padEnd(tw)}  ${t.target.padEnd(10)}  ${t.display.padStart(10)}  ${t.status}`);
}
const invalid = runs.filter((r) => !r.valid);
if (invalid.length) {
  console.log('');
  console.log('INVALID runs (results above are not trustworthy):');
  for (const r of invalid) console.log(`  ${r.server} ${r.endpoint}: ${r.problems.join('; ')}`);
}
console.log('');

// ---- results.json ---------------------------------------------------------
const result = {
  generated_at: new Date().toISOString(),
  ...meta,
  runs,
  ratios,
  targets: targetRows.map(({ name, target, value, status }) => ({ name, target, value, status })),
  valid: invalid.length === 0,
};
writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
console.log(`results written to ${outFile}`);
process.exit(invalid.length ? 1 : 0);
