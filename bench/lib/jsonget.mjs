// Usage: node jsonget.mjs KEY [KEY...] < doc
// Prints the first value found (depth-first, anywhere in the document) for
// the first KEY that is present; exits 1 if none is. Tolerates log lines
// around the JSON document.
import { readFileSync } from 'node:fs';

const keys = process.argv.slice(2);
const text = readFileSync(0, 'utf8');

function candidates(t) {
  const out = [];
  try { out.push(JSON.parse(t)); } catch {}
  for (const line of t.split('\n')) {
    const l = line.trim();
    if (l.startsWith('{') || l.startsWith('[')) {
      try { out.push(JSON.parse(l)); } catch {}
    }
  }
  const a = t.indexOf('{');
  const b = t.lastIndexOf('}');
  if (a !== -1 && b > a) {
    try { out.push(JSON.parse(t.slice(a, b + 1))); } catch {}
  }
  return out;
}

function find(node, key) {
  if (node === null || typeof node !== 'object') return undefined;
  if (!Array.isArray(node) && Object.hasOwn(node, key) && node[key] !== null && typeof node[key] !== 'object') {
    return node[key];
  }
  for (const v of Object.values(node)) {
    const r = find(v, key);
    if (r !== undefined) return r;
  }
  return undefined;
}

for (const doc of candidates(text)) {
  for (const key of keys) {
    const v = find(doc, key);
    if (v !== undefined) {
      process.stdout.write(`${v}\n`);
      process.exit(0);
    }
  }
}
process.exit(1);
