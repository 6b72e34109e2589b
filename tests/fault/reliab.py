"""Figures for docs/reliability.md: each fault test records what it tried,
how much, and the result; `make reliability` turns them into the table."""

import json
import os


def record(name, tried, amount, result, ok):
    d = os.path.join(os.environ.get("SW_BUILD", "build"), "reliability")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump({"tried": tried, "amount": amount, "result": result, "ok": bool(ok)}, f)
