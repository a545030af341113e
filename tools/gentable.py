"""The command line shared by the table generators (tools/gen-*.py): print
the generated Rust table, or with --check compare it with the checked-in
file and fail when it is stale (CI runs the --check form)."""

import os
import sys


def run(argv, usage, table, name, generate):
    """`generate(definitions_dir)` returns the table's text."""
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        raise SystemExit(usage)
    text = generate(args[0])
    if check:
        with open(table) as f:
            current = f.read()
        if current != text:
            print(f"{os.path.normpath(table)} is stale: rerun the generator named in its header", file=sys.stderr)
            return 1
        print(f"{name} table is up to date")
        return 0
    sys.stdout.write(text)
    return 0
