"""HTTP/1.1 over a dmsg stream, as an operator would speak it: dmsg-cat to
(pk, 80), a raw request in, the answer out.  For the tests and e2e
scenarios that check a service's API on its dmsg port."""
import os
import select
import subprocess
import time


def over_dmsg(bin_dir, discovery, pk, raw, timeout=15):
    """One HTTP exchange over a dmsg stream to (pk, 80): the status and body,
    or (0, b"") without an answer within timeout.  stdin stays open until the
    answer is in (a half-close would be a client leaving)."""
    p = subprocess.Popen([os.path.join(bin_dir, "dmsg-cat"), "-d", discovery, pk, "80"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    p.stdin.write(raw)
    p.stdin.flush()
    buf, end = b"", time.time() + timeout
    try:
        while time.time() < end:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(body) >= length:
                    return int(head.split(b" ")[1]), body[:length]
    finally:
        p.kill()
        p.wait()
    return 0, b""


def raw_request(method, path, body=b"", headers=None):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: dmsg", "Connection: close",
             "Content-Length: %d" % len(body)]
    if body:
        lines.append("Content-Type: application/json")
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
