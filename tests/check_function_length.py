#!/usr/bin/env python3
"""No function in proxy/ runs over 80 lines unless the comment right above it says why its
length is right (it speaks of its "length" or "lines"; issue #14: the request path reads as its
stages). Counts from the first line of a function's header to its closing brace; braces in
comments, strings and character literals are ignored.

  check_function_length.py SOURCE_DIR
"""
import pathlib
import re
import sys

LIMIT = 80


def code_of(line):
    line = re.sub(r"//.*", "", line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    return re.sub(r"'(\\.|[^'\\])*'", "''", line)


def header_start(lines, i):
    """The first line of the declaration whose body opens on line i."""
    k = i
    while k > 0:
        above = lines[k - 1]
        if not above.strip() or above.lstrip().startswith(("//", "}", "#")):
            break
        if code_of(above).rstrip().endswith((";", "{")):
            break
        k -= 1
    return k


def long_functions(lines):
    """Yields (first line, length) of each function body at namespace level over LIMIT."""
    stack = []
    start = 0
    for i, line in enumerate(lines):
        for ch in code_of(line):
            if ch == "{":
                if any(kind != "namespace" for kind in stack):
                    stack.append("inner")
                    continue
                k = header_start(lines, i)
                head = " ".join(lines[k : i + 1])
                if re.match(r"\s*namespace\b", head):
                    stack.append("namespace")
                elif (re.match(r"\s*(struct|class|enum|union)\b", head) or "(" not in head
                      or re.search(r"=\s*\{", head)):
                    stack.append("type")
                else:
                    stack.append("function")
                    start = k
            elif ch == "}" and stack:
                if stack.pop() == "function" and i - start + 1 > LIMIT:
                    yield start, i - start + 1


def main():
    root = pathlib.Path(sys.argv[1])
    failures = 0
    for path in sorted((root / "proxy").glob("*.[ch]pp")):
        lines = path.read_text().split("\n")
        for start, length in long_functions(lines):
            k = start
            while k > 0 and lines[k - 1].lstrip().startswith("//"):
                k -= 1
            comment = " ".join(lines[k:start])
            if re.search(r"\b(length|lines)\b", comment):
                continue  # its reason is written above it
            print(f"{path.relative_to(root)}:{start + 1}: a function of {length} lines with no "
                  f"comment above it saying why it is not split")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
