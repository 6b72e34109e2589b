"""Print docs/reliability.md's table from the figures the fault tests and
the fuzz run left in BUILD/reliability/*.json, and write the file.
usage: table.py RELIABILITY_DIR DOC"""

import glob
import json
import os
import sys

HEAD = """# Reliability: what was tried, how much, and the result

Every row is written by a test in `tests/fault/` (or the fuzz run) the last
time it ran on this machine; `make reliability` prints this table and
rewrites this file from those figures (`make test` and `make fuzz` refresh
them).  The tests are bounded and loopback only; they run under `make
check`, and under ASan+UBSan with gcc and clang in `.ci/run`.

Decisions where the spec is silent (the HTTP server's limits):
- whole-header deadline 10 s from accept (or from the first byte of a
  kept-alive request), body deadline 30 s, 408 {"error":…} past either;
  idle keep-alive 30 s; an answer that closes drains the peer's declared
  rest for at most 2 s;
- 4,096 connections per server, every accepted one counted; 256 per IP
  address, the next answered 503 {"error":"too many connections from this
  address"};
- a Content-Length over the 64 KiB limit is 413 before the body is read;
  chunked bodies are accepted and held to the same limit; other transfer
  codings 501; a header block over 16 KiB or 100 lines 431; HTTP/2+ 505;
- a method no route takes (TRACE, PROPFIND, …) is 405 with an Allow header
  listing the server's methods, whatever the path;
- JSON bodies: data after the value and duplicate keys are 400 "malformed
  JSON: …"; integers are read only inside their range and below 2^53;
- redis is down until AUTH, SELECT and PING succeed on a connection; while
  up, a PING every 0.5 s, and one unanswered for 1 s takes it down; the
  URL is `redis://[[user]:password@]host[:port][/db]` (percent-encoded).

| what was tried | how much | result | held |
|---|---|---|---|
"""


def main():
    d, doc = sys.argv[1], sys.argv[2]
    rows = []
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(p) as f:
            r = json.load(f)
        rows.append("| %s | %s | %s | %s |" % (r["tried"], r["amount"], r["result"],
                                               "yes" if r["ok"] else "**no**"))
    if not rows:
        rows.append("| (no figures yet: run `make test` and `make fuzz`) | | | |")
    text = HEAD + "\n".join(rows) + "\n"
    sys.stdout.write(text)
    with open(doc, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
