#!/usr/bin/env python3
"""Checks every internal link and image of Markdown files: the file it names exists, and the
#anchor it names is a heading there (mdBook's and GitHub's ids: lower case, punctuation
dropped, spaces to hyphens). Links out of the project (http, https, mailto) are not followed.
Usage: linkcheck.py FILE_OR_DIR...   Exits 1, naming each broken link with its file and line."""
import os
import re
import sys

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def slug(text):
    text = re.sub(r"`|\*\*|\*", "", text.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def lines_outside_code(path, keep_inline=False):
    """Lines outside fenced code; inline code taken out unless `keep_inline`."""
    fence = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fence = not fence
                continue
            if not fence:
                yield n, line if keep_inline else re.sub(r"`[^`]*`", "", line)


def anchors(path, cache={}):
    if path not in cache:
        found = set()
        for _, line in lines_outside_code(path, keep_inline=True):
            m = re.match(r"^(#+)\s+(.*?)\s*$", line)
            if m:
                found.add(slug(m.group(2)))
        cache[path] = found
    return cache[path]


def check(path):
    broken = []
    for n, line in lines_outside_code(path):
        for target in LINK.findall(line):
            if re.match(r"^(https?:|mailto:)", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(dest):
                broken.append(f"{path}:{n}: {target}: no such file")
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                broken.append(f"{path}:{n}: {target}: no heading #{anchor} in {dest}")
    return broken


def main(args):
    files = []
    for a in args:
        if os.path.isdir(a):
            for root, _, names in os.walk(a):
                files += [os.path.join(root, x) for x in sorted(names) if x.endswith(".md")]
        else:
            files.append(a)
    broken = [b for f in files for b in check(f)]
    for b in broken:
        print(b)
    print(f"{len(files)} files, {len(broken)} broken link(s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
