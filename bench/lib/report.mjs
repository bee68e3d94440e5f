// Turns the wrk outputs collected by bench/run into the printed table and
// bench/out/results.json.
//
// Usage: node report.mjs RUNS.jsonl META.json OUT.json
//   RUNS.jsonl  one line per wrk run: {"server","endpoint","path","method","file","exit_code",
//               "cpu_ticks" (the server processes' utime+stime over the run), "proxy_cpu_ticks"
//               (nginx's, with several nodes), "db_cpu_ticks" and "db_backends" (the PostgreSQL
//               backends serving scopegate's connections), "clk_tck", "loadavg_before", "loadavg_after", "pool"}
//   META.json   config, versions and memory figures gathered by bench/run
// The figure of record is the server's CPU time per request: cpu_ticks / clk_tck / requests.
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
        pool_exhausted: j.pool_exhausted ?? 0,
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
    pool_exhausted: 0,
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
  const cpuUs = (r.cpu_ticks * 1e6) / r.clk_tck;
  const proxyUs = (r.proxy_cpu_ticks * 1e6) / r.clk_tck;
  const dbUs = ((r.db_cpu_ticks ?? 0) * 1e6) / r.clk_tck;
  // A code-redemption run stops when its codes run out, but wrk divides by the whole -d: the
  // rate is then the connections over the mean latency (Little's law), marked as estimated.
  const rpsEstimated = Boolean(p && r.pool && p.pool_exhausted && p.mean_us);
  runs.push({
    server: r.server,
    endpoint: r.endpoint,
    method: r.method,
    path: r.path,
    ...(p ?? {}),
    ...(rpsEstimated ? { rps_wrk: p.rps, rps: (meta.config.connections * 1e6) / p.mean_us, rps_estimated: true } : {}),
    cpu_us: cpuUs,
    cpu_us_per_request: p?.requests ? cpuUs / p.requests : null,
    proxy_cpu_us_per_request: p?.requests && r.proxy_cpu_ticks ? proxyUs / p.requests : null,
    db_cpu_us_per_request: p?.requests && r.db_backends ? dbUs / p.requests : null,
    db_backends: r.db_backends ?? 0,
    loadavg_before: r.loadavg_before,
    loadavg_after: r.loadavg_after,
    p50_ms: p?.p50_us != null ? p.p50_us / 1e3 : null,
    p90_ms: p?.p90_us != null ? p.p90_us / 1e3 : null,
    p99_ms: p?.p99_us != null ? p.p99_us / 1e3 : null,
    valid: problems.length === 0,
    problems,
    raw_output: r.file,
  });
}

const find = (server, endpoint) => runs.find((r) => r.server === server && r.endpoint === endpoint);
// CPU per request stays meaningful in a run with a few timeouts (it divides by the requests that
// completed), so the cost ratios are computed for every run that completed requests; the run's
// validity is reported beside them and in the no-errors target.
const cost = (r) => (r && r.requests ? r.cpu_us_per_request : null);
for (const r of runs) {
  const h = find(r.server, 'healthz');
  r.fraction_of_healthz = h && h.valid && r.valid && h.rps ? r.rps / h.rps : null;
  r.cost_vs_healthz = cost(h) && cost(r) != null ? cost(r) / cost(h) : null;
  const other = find(r.server === 'scopegate' ? 'oidc-provider' : 'scopegate', r.endpoint);
  if (r.server === 'scopegate') {
    r.cost_vs_oidc_provider = cost(other) && cost(r) != null ? cost(r) / cost(other) : null;
    r.rps_vs_oidc_provider = other && other.valid && r.valid && other.rps ? r.rps / other.rps : null;
  }
}

const targets = meta.targets;
const hwmKb = meta.memory?.scopegate?.vmhwm_kb ?? null;
const hwmMiB = hwmKb != null ? hwmKb / 1024 : null;
const verdict = (value, ok) => (value == null ? 'N/A' : ok ? 'PASS' : 'FAIL');
const x = (v) => (v == null ? 'n/a' : `${v.toFixed(2)}x`);
const sg = (e) => find('scopegate', e);
const costRatio = (e, max, label) => {
  const v = sg(e)?.cost_vs_oidc_provider ?? null;
  return { name: `${label} CPU/request, scopegate / oidc-provider`, target: `<= ${max.toFixed(3)}x`, value: v,
    display: x(v), status: verdict(v, v <= max) };
};
const floorRatio = (e, max, label) => {
  const v = sg(e)?.cost_vs_healthz ?? null;
  return { name: `${label} CPU/request / scopegate's healthz`, target: `<= ${max}x`, value: v, display: x(v), status: verdict(v, v <= max) };
};
const sgRuns = runs.filter((r) => r.server === 'scopegate');
const worstP99 = sgRuns.length && sgRuns.every((r) => r.p99_ms != null) ? Math.max(...sgRuns.map((r) => r.p99_ms)) : null;
const p99Applies = meta.config.connections <= 32;
const targetRows = [
  costRatio('cc-issuance', 1 / 8, 'issuance'),
  floorRatio('cc-issuance', 2, 'issuance'),
  costRatio('introspection', 1 / 10, 'introspection'),
  floorRatio('introspection', 1.3, 'introspection'),
  floorRatio('forward-auth', 1.3, 'forward-auth'),
  floorRatio('decision-api', 1.3, 'decision API'),
  {
    name: 'scopegate peak RSS (VmHWM, largest node)',
    target: `<= ${targets.rss_mib} MiB`,
    value: hwmMiB,
    display: hwmMiB == null ? 'n/a' : `${hwmMiB.toFixed(1)} MiB`,
    status: verdict(hwmMiB, hwmMiB <= targets.rss_mib),
  },
  {
    name: `scopegate worst p99 (applies at -c32 and below)`,
    target: '<= 5 ms',
    value: worstP99,
    display: worstP99 == null ? 'n/a' : `${worstP99.toFixed(2)} ms`,
    status: p99Applies ? verdict(worstP99, worstP99 <= 5) : 'N/A',
  },
  {
    name: 'no non-2xx answer, no socket error (scopegate)',
    target: '0',
    value: sgRuns.filter((r) => !r.valid).length,
    display: `${sgRuns.filter((r) => !r.valid).length} bad runs`,
    status: sgRuns.length ? verdict(0, sgRuns.every((r) => r.valid)) : 'N/A',
  },
];

// ---- printed report -------------------------------------------------------
const fmtMs = (v) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtRps = (v) => (v == null ? '-' : v.toFixed(0));
const fmtUs = (v) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const fmtX = (v) => (v == null ? '-' : `${v.toFixed(2)}x`);
const withProxy = runs.some((r) => r.proxy_cpu_us_per_request != null);
const withDb = runs.some((r) => r.db_cpu_us_per_request != null);
const header = ['endpoint', 'server', 'CPU us/req', 'x healthz', 'vs oidc-provider', 'req/s', 'p50 ms', 'p99 ms',
  ...(withProxy ? ['nginx us/req'] : []), ...(withDb ? ['PostgreSQL us/req'] : []), 'non-2xx', 'sock err', 'load', 'valid'];
const rows = runs.map((r) => [
  r.endpoint,
  r.server,
  fmtUs(r.cpu_us_per_request),
  r.endpoint === 'healthz' ? '' : fmtX(r.cost_vs_healthz),
  r.server === 'scopegate' ? fmtX(r.cost_vs_oidc_provider) : '',
  `${fmtRps(r.rps)}${r.rps_estimated ? '~' : ''}`,
  fmtMs(r.p50_ms),
  fmtMs(r.p99_ms),
  ...(withProxy ? [fmtUs(r.proxy_cpu_us_per_request)] : []),
  ...(withDb ? [fmtUs(r.db_cpu_us_per_request)] : []),
  r.non2xx ?? '-',
  r.socket_errors ?? '-',
  r.loadavg_after != null ? r.loadavg_after.toFixed(2) : '-',
  r.valid ? 'yes' : 'NO',
].map(String));
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const fmtRow = (row) => row.map((c, i) => (i >= 2 && i < row.length - 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');

const c = meta.config;
console.log('');
console.log(`scopegate benchmark: wrk -t${c.threads} -c${c.connections} -d${c.duration} (warm-up ${c.warmup}), HTTPS keep-alive on loopback, ${meta.machine.nproc} cores shared by server(s) and wrk`);
console.log(`ID tokens: ${c.id_token_alg ?? 'RS256'}; scopegate store: ${c.store}${c.nodes > 1 ? `, ${c.nodes} nodes behind nginx (CPU is the nodes' sum; nginx's apart)` : ''}`);
console.log('CPU us/req: the server process(es)\' utime+stime over the measured run / requests completed (the figure of record).');
console.log('x healthz: that cost over the same server\'s /healthz cost; vs oidc-provider: scopegate\'s cost over oidc-provider\'s.');
if (withDb) console.log('PostgreSQL us/req: the backends serving scopegate\'s connections at the start of the run (not in CPU us/req).');
if (runs.some((r) => r.rps_estimated)) console.log('~: the run ended when its codes ran out; req/s is connections / mean latency.');
console.log('');
console.log(fmtRow(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) console.log(fmtRow(row));
console.log('');
const mem = meta.memory ?? {};
for (const name of ['scopegate', 'oidc-provider']) {
  const m = mem[name];
  if (!m) continue;
  const nodes = m.nodes_vmhwm_kb ? ` (per node ${m.nodes_vmhwm_kb.map((k) => (k / 1024).toFixed(1)).join(', ')} MiB)` : '';
  console.log(`${name} memory: VmHWM ${(m.vmhwm_kb / 1024).toFixed(1)} MiB (peak)${nodes}, idle RSS before load ${m.idle_rss_kb != null ? (m.idle_rss_kb / 1024).toFixed(1) : '?'} MiB`);
}
console.log('');
console.log('targets (issue #15):');
const tw = Math.max(...targetRows.map((t) => t.name.length));
for (const t of targetRows) {
  console.log(`  ${t.name.padEnd(tw)}  ${t.target.padEnd(10)}  ${t.display.padStart(12)}  ${t.status}`);
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
  targets: targetRows.map(({ name, target, value, status }) => ({ name, target, value, status })),
  valid: invalid.length === 0,
};
writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
console.log(`results written to ${outFile}`);
process.exit(invalid.length ? 1 : 0);
