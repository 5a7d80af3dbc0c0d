#!/usr/bin/env python3
"""Per-function instructions per warm hello, one build against another.

instructions.sh leaves four callgrind files per pair of builds in
bench/out/instructions-*/ (cg.*, oldest first: first build 5 s, 10 s,
second build 5 s, 10 s). For each function this prints its cost per
request in each build (10 s run minus 5 s run, over REQUESTS) and the
difference, largest first; template arguments and parameter lists are
dropped from names so that both builds' functions match.

  bench/isolation/cgdiff.py DIR REQUESTS [--inclusive] [--top N] [--grep REGEX]
"""
import argparse, collections, glob, os, re


def short(name):
    out, depth, i = [], 0, 0
    while i < len(name):
        if name.startswith(('operator<', 'operator>', 'operator()'), i):
            out.append(name[i:i + 9]); i += 9; continue
        c = name[i]
        if c == '<': depth += 1
        elif c == '>' and depth: depth -= 1
        elif depth == 0: out.append(c)
        i += 1
    n = ''.join(out).replace('(anonymous namespace)', 'anon')
    j = n.find('(')
    while j != -1 and n.startswith('operator()', j - 8):
        j = n.find('(', j + 2)
    if j > 0: n = n[:j]
    return re.sub(r"'\d+$", '', n).strip()


def load(path):
    """-> (self, inclusive) instructions by function, from a callgrind file."""
    names, own, incl = {}, collections.Counter(), collections.Counter()
    fn, in_call = None, False

    def name(tok):
        m = re.match(r'\((\d+)\)(?:\s+(.*))?', tok)
        if not m: return short(tok)
        if m.group(2): names[m.group(1)] = short(m.group(2))
        return names[m.group(1)]
    for line in open(path):
        if line.startswith('fn='): fn = name(line[3:].strip())
        elif line.startswith('cfn='): name(line[4:].strip())
        elif line.startswith('calls='): in_call = True
        elif line[:1] in '0123456789+-*':
            parts = line.split()
            if len(parts) > 1:
                cost = int(parts[1])
                incl[fn] += cost
                if not in_call: own[fn] += cost
            in_call = False
    return own, incl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir'); ap.add_argument('requests', type=float)
    ap.add_argument('--inclusive', action='store_true')
    ap.add_argument('--top', type=int, default=40); ap.add_argument('--grep')
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.dir, 'cg.*')), key=os.path.getmtime)
    if len(files) != 4:
        raise SystemExit('%s: expected 4 callgrind files (two builds), found %d' % (a.dir, len(files)))
    k = 1 if a.inclusive else 0
    runs = [load(f)[k] for f in files]
    per = [{f: (runs[i + 1][f] - runs[i][f]) / a.requests for f in runs[i] | runs[i + 1]}
           for i in (0, 2)]
    if not a.inclusive:
        print('total per request: first %.0f, second %.0f' % tuple(sum(p.values()) for p in per))
    keys = [f for f in per[0].keys() | per[1].keys() if not a.grep or re.search(a.grep, f)]
    keys.sort(key=lambda f: -abs(per[1].get(f, 0) - per[0].get(f, 0)))
    print('%8s %8s %8s  function' % ('first', 'second', 'diff'))
    for f in keys[:a.top]:
        b, n = per[0].get(f, 0), per[1].get(f, 0)
        print('%8.0f %8.0f %8.0f  %s' % (b, n, n - b, f[:150]))


main()
