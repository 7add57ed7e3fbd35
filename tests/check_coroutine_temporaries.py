#!/usr/bin/env python3
"""GCC 12 destroys some temporaries of a co_await expression twice: a conditional operator that
yields a class type, or a braced temporary, among the awaited call's arguments (reproduced with
a 20-line program under ASan; the refusals the proxy built that way corrupted the heap after
resets, issue #13). This check fails on any co_await statement in proxy/ that builds such a
temporary: build it in a named local first, then await with the name.

  check_coroutine_temporaries.py SOURCE_DIR
"""
import pathlib
import re
import sys


def statements(text):
    """Yields (line, statement) for each statement that contains co_await."""
    i = 0
    while True:
        at = text.find("co_await", i)
        if at < 0:
            return
        start = max(text.rfind(";", 0, at), text.rfind("{", 0, at), text.rfind("}", 0, at)) + 1
        depth = 0
        j = at
        while j < len(text):
            c = text[j]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif c == ";" and depth <= 0:
                break
            j += 1
        yield text.count("\n", 0, at) + 1, text[start:j]
        i = j + 1


def without_strings(s):
    return re.sub(r'"(\\.|[^"\\])*"', '""', s)


def problems(stmt):
    s = without_strings(stmt)
    found = []
    if re.search(r"\bDecision::deny\s*\(|\bDecision\s*\{", s):
        found.append("a Decision built inside the co_await expression")
    # A conditional operator whose branches are strings or other class temporaries.
    for m in re.finditer(r"\?([^:;]*):", s):
        branches = m.group(1) + s[m.end():m.end() + 80]
        if '""' in branches or "std::string" in branches or "+" in m.group(1):
            found.append("a conditional operator yielding a class temporary")
            break
    # A braced temporary among the awaited call's arguments: Type{...} or {...} as an argument.
    call = s[s.find("co_await"):]
    if re.search(r"[(,]\s*\{|\w\s*\{[^}]*\}\s*[,)]", call):
        found.append("a braced temporary among the awaited call's arguments")
    return found


def main():
    root = pathlib.Path(sys.argv[1])
    bad = 0
    for path in sorted((root / "proxy").glob("*.cpp")):
        text = path.read_text()
        for line, stmt in statements(text):
            for why in problems(stmt):
                bad += 1
                print(f"{path.relative_to(root)}:{line}: {why}:\n  {' '.join(stmt.split())}")
    if bad:
        print(f"\n{bad} co_await statement(s) build temporaries GCC 12 may destroy twice; "
              "build them in a named local first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
