#!/usr/bin/env python3
"""Generates the `migrate scan` benchmark tree (bench/scan/run calls it once, then reuses it).

usage: gen_tree.py DIR [FILES]

DIR gets FILES (default 100,000) text files of 1-8 KiB of code-like text (Rust, Python,
JavaScript, YAML, JSON, Markdown) in nested directories, deterministic (fixed seed):

- a few hundred files hold old permissions in the shapes seed 003 names (code, YAML, JSON, env
  assignments, comments), some several on a line, next to look-alikes that must not match
  (r_ads_reporting, w_shared, my_w_share, rw_organization_admin, r_organization_social);
- some hold authorization URLs, with and without a scope parameter;
- a .gitignore excludes generated/ (which also holds old permissions), and DIR/.git marks the
  tree as a repository so that both tools honour it;
- a hidden directory and a few binary files (NUL first) hold old permissions too.

Every file counts towards FILES, ignored and hidden ones included. Old permissions are never
preceded by a percent escape or a non-ASCII letter, and there are no .env files: on those points
the scanner deliberately differs from `rg -w` (see bench/scan/README.md).
"""

import os
import random
import sys

OLD = [
    "rw_ad_campaigns",
    "r_ad_campaigns",
    "rw_organization",
    "r_organization",
    "rw_dmp_segments",
    "r_ads_leadgen_automation",
    "rw_company_admin",
    "w_share",
]
LOOKALIKES = [
    "r_ads_reporting",
    "w_shared",
    "my_w_share",
    "rw_organization_admin",
    "r_organization_social",
    "r_ads",
    "w_member_social",
    "old_rw_ad_campaigns_flag",
    "r_ad_campaigns2",
]
AUTH = "https://www.linkedin.com/oauth/v2/authorization"

WORDS = (
    "account campaign member token client secret request response handler config value "
    "result error index buffer cache user profile share post comment audience segment report "
    "budget creative target organization admin page lead form sync batch retry timeout "
    "stream parse render build update delete create fetch store load save"
).split()

EXTS = ["rs", "py", "js", "ts", "yaml", "json", "md", "go", "java", "toml"]


def ident(rng):
    n = rng.randint(1, 3)
    return "_".join(rng.choice(WORDS) for _ in range(n))


def camel(rng):
    return "".join(w.capitalize() for w in ident(rng).split("_"))


def code_line(rng, ext):
    a, b, c = ident(rng), ident(rng), ident(rng)
    k = rng.randint(0, 9)
    if ext == "rs":
        return [
            f"    let {a} = {b}.{c}()?;",
            f"fn {a}(&self, {b}: &{camel(rng)}) -> Result<{camel(rng)}, Error> {{",
            f"    // {a} {b} {c}: keep the {rng.choice(WORDS)} in sync",
            f"    if {a}.len() > {rng.randint(1, 999)} {{ return Err(Error::{camel(rng)}); }}",
            f"pub struct {camel(rng)} {{ pub {a}: u64, pub {b}: String }}",
            "    }",
            f"    {a}.insert(\"{b}\".to_owned(), {c});",
            f"use crate::{a}::{camel(rng)};",
            f"    tracing::debug!({a} = %{b}, \"{c}\");",
            f"    match {a} {{ Some(x) => x, None => {b}() }}",
        ][k]
    if ext == "py":
        return [
            f"    {a} = self.{b}({c})",
            f"def {a}(self, {b}, {c}=None):",
            f"    # {a} {b} {c}: keep the {rng.choice(WORDS)} in sync",
            f"    if len({a}) > {rng.randint(1, 999)}:",
            f"class {camel(rng)}({camel(rng)}):",
            "        return None",
            f"    {a}[\"{b}\"] = {c}",
            f"from .{a} import {camel(rng)}",
            f"    logger.debug(\"{a} %s\", {b})",
            f"        raise {camel(rng)}Error(\"{c}\")",
        ][k]
    if ext in ("js", "ts"):
        return [
            f"  const {a} = await {b}.{c}();",
            f"export function {a}({b}, {c}) {{",
            f"  // {a} {b} {c}: keep the {rng.choice(WORDS)} in sync",
            f"  if ({a}.length > {rng.randint(1, 999)}) return null;",
            f"export class {camel(rng)} extends {camel(rng)} {{",
            "  }",
            f"  {a}[\"{b}\"] = {c};",
            f"import {{ {camel(rng)} }} from \"./{a}\";",
            f"  console.debug(\"{a}\", {b});",
            f"  return {{ {a}: {b}, {c} }};",
        ][k]
    if ext in ("yaml", "toml"):
        sep = ":" if ext == "yaml" else " ="
        return [
            f"{a}{sep} {b}",
            f"  {a}{sep} {rng.randint(0, 100000)}",
            f"# {a} {b} {c}",
            f"  {a}{sep} \"{b}-{c}\"",
            f"{a}_{b}{sep} true",
        ][k % 5]
    if ext == "json":
        return f'  "{a}": "{b} {c}",'
    if ext == "md":
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + "."
    return f"    {a} := {b}.{camel(rng)}({c}) // {rng.choice(WORDS)}"


def old_line(rng):
    o = rng.choice(OLD)
    o2 = rng.choice(OLD)
    look = rng.choice(LOOKALIKES)
    return rng.choice(
        [
            f'  scope: "{o},{o2}"',
            f"SCOPES={o} r_basicprofile {look}",
            f'  "scope": ["{o}", "{look}"],',
            f'const SCOPE: &str = "{o}"; // was {look}',
            f"    # TODO migrate {o} -> {look}",
            f"scopes = [\"{o}\", '{o2}', \"{look}\"]",
            f"  const url = `{AUTH}?response_type=code&scope={o}+{look}`;",
            f"{o}",
            f"    perms.insert({o2}); perms.insert({look}); // {o}",
            f"  - {o}",
        ]
    )


def lookalike_line(rng):
    return rng.choice(
        [
            f"  scope: \"{rng.choice(LOOKALIKES)} {rng.choice(LOOKALIKES)}\"",
            f"let {rng.choice(LOOKALIKES)} = true;",
            f"# uses {rng.choice(LOOKALIKES)}",
        ]
    )


def url_line(rng):
    if rng.random() < 0.5:
        return f'  AUTH_URL = "{AUTH}?response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fexample.com"'
    return f'  AUTH_URL = "{AUTH}?response_type=code&client_id=abc&scope=r_liteprofile"'


def content(rng, ext, size, specials):
    lines = []
    total = 0
    while total < size:
        line = code_line(rng, ext)
        lines.append(line)
        total += len(line) + 1
    for s in specials:
        lines.insert(rng.randrange(len(lines) + 1), s)
    return "\n".join(lines) + "\n"


def main():
    root = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    rng = random.Random(20190915)
    os.makedirs(os.path.join(root, ".git"), exist_ok=True)
    with open(os.path.join(root, ".gitignore"), "w") as f:
        f.write("generated/\n*.tmp\n")
    written = 1  # .gitignore

    # Excluded: ignored, hidden, binary. Each holds old permissions.
    def put(rel, data):
        nonlocal written
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(path, mode) as f:
            f.write(data)
        written += 1

    for i in range(200):
        put(f"generated/client_{i:03}.py", content(rng, "py", 2048, [old_line(rng)]))
    for i in range(20):
        put(f".cache/state_{i:02}.json", content(rng, "json", 1024, [old_line(rng)]))
    for i in range(20):
        put(f"assets/blob_{i:02}.bin", b"\0\x01\x02" + old_line(rng).encode() + bytes(range(256)) * 8)

    # Regular files: services/pkg/module/file.
    remaining = files - written
    per_dir = 50
    n_dirs = (remaining + per_dir - 1) // per_dir
    hits = 0
    for d in range(n_dirs):
        svc, pkg, mod = d // 100, (d // 10) % 10, d % 10
        ext_bias = EXTS[d % len(EXTS)]
        for j in range(min(per_dir, remaining)):
            ext = ext_bias if rng.random() < 0.6 else rng.choice(EXTS)
            size = rng.randint(1024, 8192)
            specials = []
            r = rng.random()
            if r < 0.003:  # a few hundred files with old permissions
                specials = [old_line(rng) for _ in range(rng.randint(1, 3))]
                hits += 1
            elif r < 0.013:
                specials = [lookalike_line(rng)]
            if rng.random() < 0.002:
                specials.append(url_line(rng))
            rel = f"service_{svc:02}/pkg_{pkg}/mod_{mod}/{ident(rng)}_{j:02}.{ext}"
            put(rel, content(rng, ext, size, specials))
            remaining -= 1
    print(f"gen_tree: {written} files, {hits} regular files with old permissions", file=sys.stderr)


if __name__ == "__main__":
    main()
