#!/usr/bin/env python3
"""Report import cycles between the modules of each workspace crate."""
import re, sys, pathlib

def modules(src):
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        if parts and parts[-1] == "tests":
            continue  # unit-test modules may use their parent
        mods[tuple(parts)] = f
    return mods

PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)::((?:\w+::)*)\{([^;]*)\};", re.S)

def refs(text, me, mods):
    text = re.sub(r"//[^\n]*", "", text)
    # drop #[cfg(test)] mod tests { ... } blocks (approximate: from marker to end)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    found = set()
    def resolve(root, segs):
        if root == "crate":
            base = []
        elif root == "super":
            base = list(me[:-1])
        else:
            base = list(me)
        while segs and segs[0] == "super":
            base = base[:-1]; segs = segs[1:]
        full = base + segs
        for n in range(len(full), 0, -1):
            if tuple(full[:n]) in mods:
                return tuple(full[:n])
        return None
    for m in USE_GROUP.finditer(text):
        prefix = [s for s in m.group(2).split("::") if s]
        for item in re.split(r",", m.group(3)):
            item = item.strip().split(" as ")[0].strip()
            if not item or item.startswith("{"):
                continue
            segs = prefix + [s for s in item.split("::") if s and s != "*" and s != "self"]
            t = resolve(m.group(1), segs)
            if t: found.add(t)
    for m in PATH.finditer(text):
        segs = [s for s in m.group(2).split("::") if s]
        t = resolve(m.group(1), segs)
        if t: found.add(t)
    return found

def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            out.append(comp)
    for v in graph:
        if v not in index:
            visit(v)
    return out

def ancestors(a, b):
    return a[: len(b)] == b or b[: len(a)] == a

bad = 0
for crate in sys.argv[1:]:
    src = pathlib.Path(crate) / "src"
    mods = modules(src)
    graph = {}
    for m, f in mods.items():
        # a module's use of its own ancestors or descendants is structure, not a cycle
        graph[m] = {t for t in refs(f.read_text(), m, mods) if t != m and not ancestors(t, m)}
    for comp in sccs(graph):
        if len(comp) > 1:
            bad += 1
            names = sorted("::".join(c) or "crate" for c in comp)
            print(f"{crate}: import cycle among {len(comp)} modules: {', '.join(names)}")
sys.exit(1 if bad else 0)
