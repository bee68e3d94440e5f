// Prints one bench/run result (bench/out/results.json) as the Markdown table docs/performance.md
// keeps per run: CPU µs/request, its ratio to the same server's /healthz floor, scopegate's
// cost over oidc-provider's, requests/s, p50/p99, and under it peak RSS and the load average.
//
// Usage: node bench/lib/mdtable.mjs [results.json] [--targets]
import { readFileSync } from 'node:fs';

const file = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? new URL('../out/results.json', import.meta.url).pathname;
const r = JSON.parse(readFileSync(file, 'utf8'));
const find = (server, endpoint) => r.runs.find((x) => x.server === server && x.endpoint === endpoint);
const us = (v) => (v == null ? '' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ratio = (a, b) => (a?.requests && b?.requests ? `${(a.cpu_us_per_request / b.cpu_us_per_request).toFixed(2)}x` : '');
const rps = (x) => (x ? `${x.rps.toFixed(0).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${x.rps_estimated ? '~' : ''}` : '');
const lat = (x) => (x ? `${x.p50_ms.toFixed(2)} / ${x.p99_ms.toFixed(1)}` : '');
const flag = (x) => (x && !x.valid ? ` (${x.socket_errors} timeouts)` : '');

const endpoints = [...new Set(r.runs.map((x) => x.endpoint))];
const withDb = r.runs.some((x) => x.db_cpu_us_per_request != null);
const withProxy = r.runs.some((x) => x.proxy_cpu_us_per_request != null);
const head = ['endpoint', 'scopegate µs/req', 'x healthz', 'vs oidc-provider', 'req/s', 'p50 / p99 ms',
  ...(withDb ? ['PostgreSQL µs/req'] : []), ...(withProxy ? ['nginx µs/req'] : []),
  'oidc-provider µs/req', 'x healthz', 'req/s', 'p50 / p99 ms'];
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map(() => '---').join('|')}|`);
for (const e of endpoints) {
  const s = find('scopegate', e);
  const o = find('oidc-provider', e);
  const sh = find('scopegate', 'healthz');
  const oh = find('oidc-provider', 'healthz');
  console.log(`| ${[
    e,
    s ? `${us(s.cpu_us_per_request)}${flag(s)}` : 'N/A',
    s && e !== 'healthz' ? ratio(s, sh) : '',
    ratio(s, o),
    rps(s),
    lat(s),
    ...(withDb ? [us(s?.db_cpu_us_per_request)] : []),
    ...(withProxy ? [us(s?.proxy_cpu_us_per_request)] : []),
    o ? `${us(o.cpu_us_per_request)}${flag(o)}` : 'N/A',
    o && e !== 'healthz' ? ratio(o, oh) : '',
    rps(o),
    lat(o),
  ].join(' | ')} |`);
}
const mem = r.memory ?? {};
const mib = (kb) => (kb == null ? '?' : `${(kb / 1024).toFixed(1)} MiB`);
const loads = r.runs.map((x) => x.loadavg_after).filter((v) => v != null);
console.log('');
console.log(`Peak RSS (VmHWM): scopegate ${mib(mem.scopegate?.vmhwm_kb)}${mem.scopegate?.nodes_vmhwm_kb ? ` (per node ${mem.scopegate.nodes_vmhwm_kb.map(mib).join(', ')})` : ''}, oidc-provider ${mib(mem['oidc-provider']?.vmhwm_kb)}. `
  + `Load average (1 min) at the end of the runs: ${Math.min(...loads).toFixed(1)} to ${Math.max(...loads).toFixed(1)}. `
  + `wrk -t${r.config.threads} -c${r.config.connections} -d${r.config.duration}, ID tokens ${r.config.id_token_alg ?? 'RS256'}, store ${r.config.store}${r.config.nodes > 1 ? `, ${r.config.nodes} nodes behind nginx` : ''}, ${r.generated_at}.`);

// With --targets: the run's targets as a table, each marked met / not met.
if (process.argv.includes('--targets')) {
  console.log('');
  console.log('| target (issue #15) | wanted | measured | |');
  console.log('|---|---|---|---|');
  const shown = (t) => (t.value == null ? 'n/a' : /RSS/.test(t.name) ? `${t.value.toFixed(1)} MiB`
    : /p99/.test(t.name) ? `${t.value.toFixed(2)} ms` : /non-2xx/.test(t.name) ? `${t.value} bad runs` : `${t.value.toFixed(2)}x`);
  const word = { PASS: 'met', FAIL: '**not met**', 'N/A': 'N/A' };
  for (const t of r.targets) console.log(`| ${t.name} | ${t.target} | ${shown(t)} | ${word[t.status] ?? t.status} |`);
}
