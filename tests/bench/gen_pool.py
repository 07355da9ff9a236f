"""Writes the pool of pre-signed webhooks the ingress benchmark posts (wrk, tests/bench/post.lua)
and produces (tests/bench/kafka_ceiling.c): one webhook per line, tab-separated:

    key  event  event_id  webhook_id  X-Duro-Signature  body

Every line has its own event id and its own resource id (comp_NNNNNN for ITEM_* events,
co_NNNNNN for CO_* events), in Duro's event mix (duro_double.sender.DEFAULT_MIX); the body is
signed with the secret as Duro signs it (HMAC-SHA256 of the exact body bytes, hex). The key is
the one duro-bridge gives the raw record. ``created_at`` is now, so the pool stays inside the
bridge's maximum event age (24 h) for the run.

  PYTHONPATH=tests python tests/bench/gen_pool.py --out pool.tsv --n 20000 --secret-file F
"""
from __future__ import annotations

import argparse
import json
import random
import sys

from duro_double.sender import DEFAULT_MIX, co_event, item_event, sign


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--secret-file", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--webhook-id", default="webhook_bench")
    a = p.parse_args(argv)
    if not 1 <= a.n <= 1_000_000:
        p.error("--n must be 1..1000000")
    with open(a.secret_file) as f:
        secret = f.read().strip()
    rng = random.Random(a.seed)
    names, weights = list(DEFAULT_MIX), list(DEFAULT_MIX.values())
    n_item = n_co = 0
    with open(a.out, "w") as out:
        for name in rng.choices(names, weights, k=a.n):
            if name.startswith("ITEM_"):
                n_item += 1
                key = f"comp_{n_item:06d}"
                ev = item_event(name, key, webhook_id=a.webhook_id, rng=rng)
            else:
                n_co += 1
                key = f"co_{n_co:06d}"
                ev = co_event(name, key, stage_id=f"stage_{n_co:06d}", webhook_id=a.webhook_id,
                              rng=rng)
            body = json.dumps(ev, separators=(",", ":"))
            out.write("\t".join((key, ev["event"], ev["id"], a.webhook_id,
                                 sign(secret, body.encode()), body)) + "\n")
    print(f"gen_pool: {a.n} signed webhooks in {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
