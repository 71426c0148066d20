// The code's shape, as docs/architecture.md promises it to a newcomer: no
// import circle among the web client's modules (web/js) or among the
// modules of any Rust crate (crates/*/src), and no function in web/js over
// 120 lines. The JavaScript is read with TypeScript's parser (the type
// check's, from tests/browser's packages); the Rust with a small reader of
// `crate::`, `super::` and `self::` paths (comments and strings left out,
// as is each file's `#[cfg(test)] mod tests`). In Rust a module may use
// the modules that contain it (`super::`, the crate root: its context);
// a circle is modules neither of which contains the other using each
// other, directly or round several.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'tests/browser/package.json'));
/** @type {typeof import('typescript')} */
const ts = require('typescript');

/** @param {string} dir @param {string} ext @returns {string[]} */
function filesUnder(dir, ext) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return filesUnder(p, ext);
    return p.endsWith(ext) ? [p] : [];
  });
}

/**
 * The first circle in a graph of edges, as the path round it; null if none.
 * @param {Map<string, Set<string>>} edges
 * @returns {string[]|null}
 */
export function findCircle(edges) {
  /** @type {Map<string, 'open'|'done'>} */
  const seen = new Map();
  /** @type {string[]} */
  const path = [];
  /** @param {string} n @returns {string[]|null} */
  const visit = (n) => {
    seen.set(n, 'open');
    path.push(n);
    for (const m of edges.get(n) ?? []) {
      if (seen.get(m) === 'open') return [...path.slice(path.indexOf(m)), m];
      if (!seen.has(m)) {
        const found = visit(m);
        if (found) return found;
      }
    }
    path.pop();
    seen.set(n, 'done');
    return null;
  };
  for (const n of [...edges.keys()].sort()) {
    if (!seen.has(n)) {
      const found = visit(n);
      if (found) return found;
    }
  }
  return null;
}

// ---- the web client ----

const webFiles = filesUnder(join(root, 'web/js'), '.js');
/** @param {string} f */
const parse = (f) => ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);

/** @param {string} file @returns {string[]} the files it imports */
function jsImports(file) {
  const out = [];
  for (const st of parse(file).statements) {
    const spec = (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) ? st.moduleSpecifier : undefined;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) out.push(resolve(dirname(file), spec.text));
  }
  return out;
}

test('no import circle among the web client\'s modules', () => {
  const edges = new Map(webFiles.map((f) => [relative(root, f), new Set(jsImports(f).map((i) => relative(root, i)))]));
  // Every import names a file that is there (a moved module leaves none dangling).
  for (const [f, to] of edges) for (const t of to) assert.ok(edges.has(t), `${f} imports ${t}, which does not exist`);
  assert.equal(findCircle(edges)?.join(' → ') ?? null, null);
});

test('no function in web/js is over 120 lines', () => {
  /** @type {{where: string, lines: number}[]} */
  const long = [];
  for (const f of webFiles) {
    const src = parse(f);
    /** @param {import('typescript').Node} node */
    const walk = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const first = src.getLineAndCharacterOfPosition(node.getStart(src)).line;
        const last = src.getLineAndCharacterOfPosition(node.getEnd()).line;
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : '(anonymous)';
        if (last - first + 1 > 120) long.push({ where: `${relative(root, f)}:${first + 1} ${name}`, lines: last - first + 1 });
      }
      ts.forEachChild(node, walk);
    };
    walk(src);
  }
  assert.deepEqual(long, []);
});

// ---- the Rust crates ----

/**
 * A Rust file without comments, string and char literals, and without its
 * `#[cfg(test)] mod tests { … }` (whose `super::` is the file itself).
 * @param {string} text
 */
export function rustCode(text) {
  let out = '';
  for (let i = 0; i < text.length;) {
    const rest = text.slice(i, i + 3);
    if (rest.startsWith('//')) { const e = text.indexOf('\n', i); i = e < 0 ? text.length : e; continue; }
    if (rest.startsWith('/*')) {
      // Block comments nest in Rust.
      let depth = 0;
      do {
        if (text.startsWith('/*', i)) { depth++; i += 2; } else if (text.startsWith('*/', i)) { depth--; i += 2; } else i++;
      } while (depth > 0 && i < text.length);
      continue;
    }
    const raw = /^b?r(#*)"/.exec(text.slice(i, i + 40));
    if (raw && (i === 0 || !/[A-Za-z0-9_]/.test(text[i - 1]))) {
      const close = `"${raw[1]}`;
      const e = text.indexOf(close, i + raw[0].length);
      i = e < 0 ? text.length : e + close.length;
      out += '""';
      continue;
    }
    if (text[i] === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      out += '""';
      continue;
    }
    // A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
    const ch = /^'(?:[^'\\]|\\[^']+|\\')'/.exec(text.slice(i, i + 12));
    if (ch) { i += ch[0].length; out += "' '"; continue; }
    out += text[i++];
  }
  const testMod = /#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{[\s\S]*$/;
  while (testMod.test(out)) out = out.replace(testMod, (m) => dropBlock(m));
  return out;
}

/**
 * `#[cfg(test)] mod x { … } rest` without the module: the braces matched.
 * @param {string} s
 */
function dropBlock(s) {
  const open = s.indexOf('{');
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return s.slice(i + 1);
  }
  return '';
}

/**
 * The module paths a piece of Rust names after `crate::`, `super::` or
 * `self::`, groups (`crate::{a::B, c}`) expanded.
 * @param {string} code
 * @returns {{base: 'crate'|'super'|'self', path: string[]}[]}
 */
export function rustPaths(code) {
  const out = [];
  const re = /\b(crate|super|self)::/g;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    // `super::super::x`: one level up each.
    let base = /** @type {'crate'|'super'|'self'} */ (m[1]);
    let at = re.lastIndex;
    /** @type {string[]} */
    const ups = [];
    while (base === 'super' && code.startsWith('super::', at)) { ups.push('super'); at += 7; }
    re.lastIndex = at;
    for (const path of pathsAt(code, at)) out.push({ base, path: [...ups, ...path] });
  }
  return out;
}

/**
 * The paths starting at `at`: `a::b::C` or a group `{…}` of them.
 * @param {string} code @param {number} at @returns {string[][]}
 */
function pathsAt(code, at) {
  const head = [];
  for (;;) {
    const id = /^\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(code.slice(at, at + 80));
    if (id) {
      head.push(id[1]);
      at += id[0].length;
      const sep = /^\s*::/.exec(code.slice(at, at + 10));
      if (!sep) return [head];
      at += sep[0].length;
      continue;
    }
    if (/^\s*\{/.test(code.slice(at, at + 10))) {
      const open = code.indexOf('{', at);
      let depth = 0;
      let start = open + 1;
      /** @type {string[][]} */
      const all = [];
      for (let i = open; i < code.length; i++) {
        if (code[i] === '{') depth++;
        else if (code[i] === '}') depth--;
        if ((code[i] === ',' && depth === 1) || depth === 0) {
          for (const p of pathsAt(code.slice(0, i), start)) all.push([...head, ...p]);
          start = i + 1;
          if (depth === 0) break;
        }
      }
      return all;
    }
    return [head];
  }
}

/**
 * Each module file of a crate's `src` and the module files it uses.
 * @param {string} src
 * @returns {Map<string, Set<string>>}
 */
export function rustModuleGraph(src) {
  /** @type {Map<string, string>} module path ('' the root; 'a::b') → file */
  const modules = new Map();
  for (const f of filesUnder(src, '.rs')) {
    const rel = relative(src, f).replace(/\.rs$/, '').split('/');
    if (rel[0] === 'bin') continue; // each a crate of its own
    if (rel.at(-1) === 'mod') rel.pop();
    if (rel.length === 1 && (rel[0] === 'lib' || rel[0] === 'main')) rel.pop();
    modules.set(rel.join('::'), f);
  }
  const edges = new Map();
  for (const [mod, file] of modules) {
    const here = mod ? mod.split('::') : [];
    const to = new Set();
    const code = rustCode(readFileSync(file, 'utf8'));
    for (const { base, path } of rustPaths(code)) {
      let abs;
      if (base === 'crate') abs = path;
      else {
        const ups = path.filter((s) => s === 'super').length + (base === 'super' ? 1 : 0);
        abs = [...here.slice(0, here.length - ups), ...path.filter((s) => s !== 'super')];
      }
      // The longest prefix that is a module of ours; items of the root
      // (lib.rs) count as the root.
      for (let n = abs.length; n >= 0; n--) {
        const target = abs.slice(0, n).join('::');
        if (modules.has(target)) {
          // A module may use what the modules containing it define (its
          // `super::`, the crate root): they are its context, not a peer.
          const contains = target === '' || mod.startsWith(`${target}::`);
          if (target !== mod && !contains) to.add(relative(root, /** @type {string} */ (modules.get(target))));
          break;
        }
      }
    }
    // Its own submodules are named without a prefix (`mod run; use run::start;`).
    for (const [, sub] of code.matchAll(/\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;/g)) {
      const target = [...here, sub].join('::');
      if (modules.has(target) && new RegExp(`(?<![A-Za-z0-9_:])${sub}::`).test(code)) {
        to.add(relative(root, /** @type {string} */ (modules.get(target))));
      }
    }
    edges.set(relative(root, file), to);
  }
  return edges;
}

test('no import circle among the modules of any crate', () => {
  const crates = readdirSync(join(root, 'crates')).filter((c) => statSync(join(root, 'crates', c, 'src')).isDirectory());
  assert.ok(crates.length >= 5, `crates found: ${crates}`);
  const circles = [];
  for (const c of crates) {
    const circle = findCircle(rustModuleGraph(join(root, 'crates', c, 'src')));
    if (circle) circles.push(circle.join(' → '));
  }
  assert.deepEqual(circles, []);
});

test('the readers see what they must (a circle, a group, a comment)', () => {
  assert.deepEqual(findCircle(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]])), ['a', 'b', 'c', 'a']);
  assert.equal(findCircle(new Map([['a', new Set(['b'])], ['b', new Set()]])), null);
  const code = rustCode('mod run;\nuse run::go;\nuse crate::{media::{Shard, run}, ws};\n// crate::not_this\nlet s = "crate::nor_this";\nsuper::super::x::y();\n#[cfg(test)]\nmod tests { use crate::tested; }\n');
  assert.deepEqual(rustPaths(code).map((p) => `${p.base}:${p.path.join('::')}`),
    ['crate:media::Shard', 'crate:media::run', 'crate:ws', 'super:super::x::y']);
  assert.ok(!code.includes('tested') && !code.includes('not_this') && !code.includes('nor_this'));
});
