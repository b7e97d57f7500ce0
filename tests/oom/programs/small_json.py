# SPDX-License-Identifier: MIT
"""A small program for fault injection: imports json, builds a dict and a list."""
import json

table = {"k%d" % i: [i, str(i), {"n": i}] for i in range(2000)}
items = [json.dumps(v) for v in table.values()]
text = json.dumps(table)
back = json.loads(text)
assert back["k7"][1] == "7"
print("ok", len(items), len(text))
