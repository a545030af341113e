#!/usr/bin/env python3
"""Report import cycles between the modules of each crate given.

A module may use its own ancestors and descendants (that is structure, not a
cycle); otherwise no module may import a module that imports it back,
directly or through others. Only non-test code counts: `#[cfg(test)]` inline
modules and files declared `#[cfg(test)] mod name;` (and `tests.rs` files)
are left out.

Usage: check-module-cycles.py [-v] CRATE_DIR...   (exit status 1 on any cycle;
-v lists the imports inside each cycle)
Dependency-free: reads `crate::`, `super::` and `self::` paths in the source.
"""
import pathlib
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
USE = re.compile(r"\buse\s+(crate|super|self)::([^;]*);", re.S)
TEST_MOD_DECL = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
TEST_MOD_INLINE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")


def module_files(src):
    """Module path (tuple of names) → file, leaving out test-only files."""
    mods = {}
    test_only = set()
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        if parts and parts[-1] == "tests":
            continue  # unit-test modules may use their parent
        mods[tuple(parts)] = f
        for name in TEST_MOD_DECL.findall(f.read_text()):
            test_only.add(tuple(parts) + (name,))
    return {m: f for m, f in mods.items() if not any(m[: len(t)] == t for t in test_only)}


def strip(text):
    """The text without comments, string contents kept (serde `with` paths
    are real dependencies) and without `#[cfg(test)]` inline modules."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # Doc comments stay: an intra-doc link to a module is a dependency too.
    text = re.sub(r"//(?![/!])[^\n]*", "", text)
    while True:
        m = TEST_MOD_INLINE.search(text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + text[i:]


def use_paths(tree):
    """Every full path named by a use tree body such as `a::{b, c::{d, e}}`."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        # split s at top-level commas
        depth, start, items = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(s[start:i])
                start = i + 1
        items.append(s[start:])
        for item in items:
            if not item:
                continue
            brace = item.find("{")
            if brace >= 0 and item.endswith("}"):
                head = [p for p in item[:brace].split("::") if p]
                walk(prefix + head, item[brace + 1 : -1])
            else:
                item = item.split("as", 1)[0] if re.search(r"\Was\w", item) else item
                segs = [p for p in item.split("::") if p and p not in ("*", "self")]
                out.append(prefix + segs)

    walk([], tree)
    return out


def refs(text, me, mods):
    text = strip(text)
    found = set()

    def resolve(root, segs):
        base = [] if root == "crate" else list(me[:-1]) if root == "super" else list(me)
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
        full = base + segs
        for n in range(len(full), 0, -1):
            if tuple(full[:n]) in mods:
                return tuple(full[:n])
        return None

    for m in USE.finditer(text):
        for segs in use_paths(m.group(2)):
            t = resolve(m.group(1), segs)
            if t:
                found.add(t)
    for m in PATH.finditer(text):
        t = resolve(m.group(1), [s for s in m.group(2).split("::") if s])
        if t:
            found.add(t)
    return found


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(graph, comp):
    """One shortest cycle through the component, as a list of modules."""
    members, best = set(comp), None
    for start in sorted(comp):
        prev, frontier, found = {start: None}, [start], None
        while frontier and not found:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w == start:
                        found = v
                        break
                    if w in members and w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        if found:
            path = [found]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            cycle = list(reversed(path)) + [start]
            if best is None or len(cycle) < len(best):
                best = cycle
    return best or sorted(comp)


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def name(m):
    return "::".join(m) or "crate"


def main(crates, verbose=False):
    bad = 0
    for crate in crates:
        src = pathlib.Path(crate) / "src"
        mods = module_files(src)
        graph = {}
        for m, f in mods.items():
            graph[m] = {t for t in refs(f.read_text(), m, mods) if t != m and not related(t, m)}
        for comp in sccs(graph):
            if len(comp) > 1:
                bad += 1
                names = sorted(name(c) for c in comp)
                print(f"{crate}: import cycle among {len(comp)} modules: {', '.join(names)}")
                print("  e.g. " + " -> ".join(name(c) for c in shortest_cycle(graph, comp)))
                if verbose:
                    for m in sorted(comp):
                        inside = sorted(name(t) for t in graph[m] if t in comp)
                        print(f"    {name(m)} -> {', '.join(inside)}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    args = [a for a in sys.argv[1:] if a != "-v"]
    sys.exit(main(args, verbose="-v" in sys.argv[1:]))
