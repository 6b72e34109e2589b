"""Transport entries from the spec alone (services.md, transport-discovery):
t_id is the UUID of the first 16 bytes of BLAKE2b-256(edge_lo || edge_hi ||
type), version nibble 8, variant 10.  Shared by the transport-discovery and
route-finder black-box tests and the e2e scenario."""

import hashlib
import uuid


def t_id(a, b, typ):
    lo, hi = sorted([a, b])
    h = bytearray(hashlib.blake2b(bytes.fromhex(lo) + bytes.fromhex(hi) + typ.encode(),
                                  digest_size=32).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(h)))


def entry(a, b, typ="dmsg", label="user"):
    """An entry between two keys (Key objects or hex PKs)."""
    a = getattr(a, "pk", a)
    b = getattr(b, "pk", b)
    return {"t_id": t_id(a, b, typ), "edges": sorted([a, b]), "type": typ, "label": label}
