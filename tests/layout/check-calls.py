#!/usr/bin/env python3
"""check-calls.py: the daemon's file-level call graph must go one way.

Usage: check-calls.py [--nm NM] [--extra OBJ=REL]... DAEMON_SRC OBJ...
       check-calls.py [--nm NM] DAEMON_SRC --build BUILD_DIR    (by hand)

Each daemon/ folder with a README.md is a room; its line `Calls: a, b`
names the rooms its files may call (names relative to daemon/, "(nothing
...)" for none). A file may call its own room's files; main.c (daemon/
itself) may call anything. From the object files, an edge A -> B exists
when A references a global symbol that B defines. The check fails (exit 1)
on an edge to a room that A's README does not name, on any cycle of files
(a strongly connected component of more than one file, within one room
too), on Calls lines that let rooms loop, and on a global defined in two
files. Exit 2 is a setup error (an object of no room, a daemon/*.c with no
object, a README without its Calls line): the list of objects went stale.

Why objects and nm rather than #include lines: a header with struct
definitions or static inline helpers costs no symbol and may be shared
either way; what ties two files together at link time, and lets a change in
one break the other, is a real reference to a function or data symbol.
Symbols defined outside the daemon (libc, libevent, protobuf-c, ...) make
no edges. Only the objects given count: pass one build directory's (an
ASan build is another directory with the same files).
"""

import argparse
import glob
import os
import re
import subprocess
import sys

# nm types of a defined global symbol (weak W/V included: a weak default
# is still code of that file), of a strong one, and of a reference (w/v:
# weak undefined).
DEFINED = set("TDBRCGSWVIu")
STRONG = set("TDBRGSI")
REFERENCED = set("Uwv")
MAIN = "main.c"
MAIN_ROOM = "(main)"

OBJ_RE = re.compile(r"/CMakeFiles/[^/]+\.dir/(.+)\.o(bj)?$")


class SetupError(Exception):
    pass


def read_rooms(src):
    """Room name (relative to src) -> set of rooms it may call."""
    rooms = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        if "README.md" not in filenames or dirpath == src:
            continue
        room = os.path.relpath(dirpath, src)
        path = os.path.join(dirpath, "README.md")
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f if l.startswith("Calls:")]
        if len(lines) != 1:
            raise SetupError(f"{path}: needs exactly one line 'Calls: room, ...'")
        value = lines[0][len("Calls:"):].strip()
        if value.startswith("("):
            rooms[room] = set()
        else:
            rooms[room] = {r.strip().strip("/") for r in value.split(",") if r.strip()}
    for room, callees in rooms.items():
        for callee in callees - set(rooms):
            raise SetupError(f"{room}/README.md: Calls names '{callee}', which has no README.md")
    return rooms


def room_of(rel, rooms):
    """The deepest folder above rel that is a room; main.c is the root's."""
    if rel == MAIN:
        return MAIN_ROOM
    d = os.path.dirname(rel)
    while d:
        if d in rooms:
            return d
        d = os.path.dirname(d)
    raise SetupError(f"{rel}: in no room (no README.md with a Calls line above it)")


def rel_of(obj):
    m = OBJ_RE.search(obj.replace(os.sep, "/"))
    if not m:
        raise SetupError(f"{obj}: not a CMake object path (.../CMakeFiles/<target>.dir/<file>.o)")
    rel = m.group(1)
    if rel.startswith("__/"):
        raise SetupError(f"{obj}: its source is outside daemon/")
    return rel


def read_symbols(nm, objs):
    """object -> (defined, referenced, strongly defined) global symbol sets,
    with one nm run."""
    run = subprocess.run([nm, "-P", "-A", *objs], capture_output=True, text=True)
    if run.returncode != 0:
        raise SetupError(f"{nm} failed: {run.stderr.strip()}")
    out = run.stdout
    syms = {o: (set(), set(), set()) for o in objs}
    known = set(objs)
    for line in out.splitlines():
        head, _, rest = line.rpartition(": ")
        fields = rest.split()
        if head not in known or len(fields) < 2:
            raise SetupError(f"unexpected nm output: {line}")
        name, kind = fields[0], fields[1]
        if name.startswith("__gnu_lto_"):
            raise SetupError(f"{head}: an LTO object; nm sees no symbols in it")
        if kind in DEFINED:
            syms[head][0].add(name)
            if kind in STRONG:
                syms[head][2].add(name)
        elif kind in REFERENCED:
            syms[head][1].add(name)
    return syms


def defined_twice(files, syms):
    """Strong definitions of one symbol in two files: which one a call
    reaches depends on the link order, so the edge would be a guess."""
    where = {}
    for obj, rel in files.items():
        for s in syms[obj][2]:
            where.setdefault(s, []).append(rel)
    return {s: sorted(rels) for s, rels in where.items() if len(rels) > 1}


def build_graph(files, syms):
    """files: object -> rel. Returns {(a, b): sorted symbols} over rels."""
    definers = {}
    for obj, rel in files.items():
        for s in syms[obj][0]:
            definers.setdefault(s, set()).add(rel)
    edges = {}
    for obj, a in files.items():
        for s in syms[obj][1]:
            for b in definers.get(s, ()):
                if b != a:
                    edges.setdefault((a, b), []).append(s)
    return {e: sorted(s) for e, s in edges.items()}


def sccs(nodes, succ):
    """Tarjan's strongly connected components, iterative."""
    index, low, on, stack, out = {}, {}, set(), [], []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(succ.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(succ.get(w, ())))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def collect(args):
    """object path -> rel path, checked against the sources under src."""
    src = args.src
    files = {}
    if args.build:
        pattern = os.path.join(args.build, "daemon", "CMakeFiles", "*.dir", "**", "*.o")
        for obj in sorted(glob.glob(pattern, recursive=True)):
            rel = rel_of(obj)
            if os.path.exists(os.path.join(src, rel)):
                files[obj] = rel
            else:
                print(f"note: {obj}: stale object (no {rel}), ignored")
    for arg in args.objects:
        for obj in filter(None, arg.split(";")):
            files[obj] = rel_of(obj)
    seen = set(files.values())
    for rel in seen:
        if not os.path.exists(os.path.join(src, rel)):
            raise SetupError(f"{rel}: an object of a file that is not in {src}")
    for dirpath, _, filenames in os.walk(src):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), src)
            if name.endswith(".c") and rel not in seen:
                raise SetupError(f"{rel}: no object given; is it in a library of "
                                 "daemon/CMakeLists.txt?")
    for extra in args.extra:
        obj, sep, rel = extra.partition("=")
        if not sep or not rel:
            raise SetupError(f"--extra {extra}: want OBJ=REL")
        if rel in set(files.values()):
            raise SetupError(f"--extra {extra}: {rel} is already a file of the daemon")
        files[obj] = rel
    return files


def check(args):
    rooms = read_rooms(args.src)
    files = collect(args)
    room = {rel: room_of(rel, rooms) for rel in files.values()}
    syms = read_symbols(args.nm, sorted(files))
    edges = build_graph(files, syms)
    bad = 0

    twice = defined_twice(files, syms)
    for s, rels in sorted(twice.items()):
        print(f"DEFINED-TWICE {s}: {' '.join(rels)}")

    for (a, b), symbols in sorted(edges.items()):
        ra, rb = room[a], room[b]
        if ra == rb or ra == MAIN_ROOM or rb in rooms.get(ra, ()):
            continue
        bad += 1
        print(f"BACK-CALL {a} ({ra}) -> {b} ({rb}): {', '.join(symbols)}")

    succ = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    cycles = [c for c in sccs(set(room), succ) if len(c) > 1]
    for comp in cycles:
        inside = set(comp)
        print(f"CYCLE of {len(comp)} files: {' '.join(comp)}")
        for (a, b), symbols in sorted(edges.items()):
            if a in inside and b in inside:
                print(f"  {a} -> {b}: {', '.join(symbols)}")

    # The Calls lines themselves must not let rooms loop (else "down" means nothing).
    room_loops = [c for c in sccs(set(rooms), rooms) if len(c) > 1]
    for comp in room_loops:
        print(f"ROOM-LOOP in the README Calls lines: {' '.join(comp)}")

    files_in_cycles = sum(len(c) for c in cycles)
    if bad or cycles or room_loops or twice:
        print(f"layout: FAIL: {bad} back-calls, {len(cycles)} cycles ({files_in_cycles} files), "
              f"{len(room_loops)} room loops, {len(twice)} symbols defined twice; "
              f"{len(files)} files, {len(edges)} edges")
        return 1

    counts = {}
    for a, b in edges:
        if room[a] != room[b]:
            counts.setdefault((room[a], room[b]), [0, 0])
            counts[(room[a], room[b])][0] += 1
            counts[(room[a], room[b])][1] += len(edges[(a, b)])
    for (ra, rb), (n, s) in sorted(counts.items()):
        print(f"{ra:>16} -> {rb:<16} {n:3} file edges, {s:4} symbols")
    print(f"layout: ok: {len(files)} files in {len(set(room.values()))} rooms, "
          f"{len(edges)} edges, calls go down, no cycles")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nm", default="nm")
    p.add_argument("--build", help="take every daemon object of this build directory")
    p.add_argument("--extra", action="append", default=[], metavar="OBJ=REL",
                   help="also treat OBJ as the file REL of daemon/ (for the fixtures)")
    p.add_argument("src", help="the daemon's source root (daemon/)")
    p.add_argument("objects", nargs="*", help="object files (';'-lists are split)")
    args = p.parse_args()
    args.src = os.path.normpath(args.src)
    try:
        return check(args)
    except (SetupError, OSError) as e:
        print(f"layout: setup error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
