#!/usr/bin/env python3
"""Reads tests/mutate/mutants.txt (format: see its header) for run.sh.

  mutants.py LIST list [IDS]      id<TAB>file<TAB>suites<TAB>equivalent-reason
  mutants.py LIST apply ROOT ID   applies mutant ID to ROOT/file in place
  mutants.py LIST check ROOT      every mutant applies exactly once to ROOT
Exit 2 (with one line on stderr) on a malformed list or a mutant whose
original text is not in its file exactly once.
"""
import sys


def die(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(2)


def parse(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = {"id": line[1:-1], "line": n, "file": None, "why": None, "suites": None,
                       "equivalent": "", "old": [], "new": []}
                mutants.append(cur)
                continue
            if cur is None:
                die(f"{path}:{n}: text before the first [id]")
            if line.startswith("- ") or line == "-":
                if cur["new"]:
                    die(f"{path}:{n}: [{cur['id']}]: original after replacement")
                cur["old"].append(line[2:])
            elif line.startswith("+ ") or line == "+":
                cur["new"].append(line[2:])
            else:
                key, sep, val = line.partition(":")
                if not sep or key not in ("file", "why", "suites", "equivalent"):
                    die(f"{path}:{n}: [{cur['id']}]: not a field: {line}")
                cur[key] = val.strip()
    seen = set()
    for m in mutants:
        where = f"{path}:{m['line']}: [{m['id']}]"
        if m["id"] in seen:
            die(f"{where}: duplicate id")
        seen.add(m["id"])
        for k in ("file", "why", "suites"):
            if not m[k]:
                die(f"{where}: no {k}")
        if not m["old"] or not m["new"]:
            die(f"{where}: needs '- ' original and '+ ' replacement lines")
        m["old_text"] = "\n".join(m["old"])
        m["new_text"] = "\n".join(m["new"]) if m["new"] != [""] else ""
        if m["old_text"] == m["new_text"]:
            die(f"{where}: the replacement is the original")
    return mutants


def apply(root, m, write):
    path = f"{root}/{m['file']}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die(f"[{m['id']}]: {m['file']}: {e.strerror}")
    count = text.count(m["old_text"])
    if count != 1:
        die(f"[{m['id']}]: the original text is in {m['file']} {count} times, not once: "
            f"{m['old'][0].strip()}")
    if write:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(m["old_text"], m["new_text"]))


def main():
    if len(sys.argv) < 3:
        die(__doc__.strip())
    mutants = parse(sys.argv[1])
    cmd = sys.argv[2]
    if cmd == "list":
        want = [x for x in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if x]
        ids = {m["id"] for m in mutants}
        for w in want:
            if w not in ids:
                die(f"MUTANTS: no mutant named {w}")
        for m in mutants:
            if not want or m["id"] in want:
                print("\t".join([m["id"], m["file"], m["suites"], m["equivalent"]]))
    elif cmd == "apply" and len(sys.argv) == 5:
        found = [m for m in mutants if m["id"] == sys.argv[4]]
        if not found:
            die(f"no mutant named {sys.argv[4]}")
        apply(sys.argv[3], found[0], True)
    elif cmd == "check" and len(sys.argv) == 4:
        for m in mutants:
            apply(sys.argv[3], m, False)
        print(f"{len(mutants)} mutants, each applies exactly once")
    else:
        die(__doc__.strip())


main()
