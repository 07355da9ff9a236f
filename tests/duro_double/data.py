"""Deterministic, seeded stand-in for the contents of a Duro library.

``DuroData(seed, components=N, change_orders=M)`` builds N components (``comp_000001`` ...)
and M change orders (``co_000001`` ...) from ``random.Random(seed)``: the same seed gives the
same library. Documents are plain dicts shaped like the GraphQL types of
``schemas/duro-api.graphql`` and are never mutated in place (an update replaces the dict),
so a reader may keep a reference without copying while writers carry on.

A resource can be made to "appear later": it exists but stays invisible to ``get`` until a
given time, as when Duro sends the webhook before it has finished writing the resource.

Each kind's ids are also kept in a sorted list, updated by ``add`` / ``delete`` (a binary
search and one insertion or removal), so that ``list_ids`` does not sort and ``page`` (the
unfiltered listing the double serves) costs O(log N + page size), not O(N).
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import threading
import time
from typing import Callable, Iterable

COMPONENT = "component"
CHANGE_ORDER = "change_order"
KINDS = (COMPONENT, CHANGE_ORDER)

# (category name, code, CPN prefix); the code in lower case picks the name generator
CATEGORIES = [("Resistor", "RES", "210"), ("Capacitor", "CAP", "211"), ("Inductor", "IND", "212"),
              ("Integrated Circuit", "IC", "230"), ("Connector", "CON", "240"),
              ("Printed Circuit Board", "PCB", "300"), ("Screw", "SCR", "410"),
              ("Enclosure", "ENC", "420"), ("Cable Assembly", "CBL", "510"),
              ("Assembly", "ASY", "900"), ("Product", "PRD", "999"), ("Document", "DOC", "100")]
STATUSES = ["DESIGN", "PROTOTYPE", "PRODUCTION", "OBSOLETE"]
STATUS_WEIGHTS = [3, 2, 6, 1]
PACKAGES = ["0201", "0402", "0603", "0805", "1206"]
IC_PARTS = ["STM32F405RGT6", "ATmega328P-AU", "TPS62130RGTR", "LM358DR", "ESP32-WROOM-32E",
            "MAX3232CSE", "NRF52840-QIAA", "TLV1117-33", "INA219AIDR", "W25Q128JVSIQ"]
CON_PARTS = ["USB-C receptacle 16p", "JST-PH 2p vertical", "RJ45 shielded", "M12 4p A-coded",
             "Header 2x5 1.27mm", "SMA edge-mount"]
PRODUCTS = ["Sensor Hub", "Motor Controller", "Gateway", "Power Module", "Field Logger",
            "Drone Flight Computer", "Battery Pack"]
DOC_KINDS = ["Assembly Instructions", "Test Procedure", "Datasheet", "Drawing", "Specification"]
FIRST_NAMES = ["Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances",
               "Alan", "Radia", "Donald", "Hedy", "Edsger", "Katherine", "John", "Sophie"]
LAST_NAMES = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
              "Allen", "Turing", "Perlman", "Knuth", "Lamarr", "Dijkstra", "Johnson", "Wilson"]
STAGE_NAMES = ["Engineering Review", "Quality Review", "Manufacturing Approval"]
CO_TOPICS = ["Update resistor values on power stage", "Replace obsolete regulator",
             "Release enclosure rev B", "Add test procedure", "Change connector supplier",
             "Fix silkscreen polarity marks", "Promote prototype BOM to production",
             "Obsolete legacy cable assembly", "Tighten screw torque spec", "New product launch"]
DECISIONS = ["pending", "approved", "rejected"]

BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def rfc3339(t: dt.datetime | float | None = None) -> str:
    """RFC 3339 in UTC with a Z; ``t`` is a datetime, a POSIX time, or None for now."""
    if t is None:
        t = time.time()
    if not isinstance(t, dt.datetime):
        t = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def component_id(n: int) -> str:
    return f"comp_{n:06d}"


def change_order_id(n: int) -> str:
    return f"co_{n:06d}"


def kind_of(resource_id: str) -> str:
    if resource_id.startswith("comp_"):
        return COMPONENT
    if resource_id.startswith("co_"):
        return CHANGE_ORDER
    raise ValueError(f"not a component or change order id: {resource_id!r}")


class DuroData:
    """The library: components and change orders by id, thread-safe.

    ``clock`` (default ``time.time``) decides when "appear later" resources become visible.
    """

    def __init__(self, seed: int = 0, components: int = 1000, change_orders: int = 200,
                 clock: Callable[[], float] = time.time):
        self.seed = seed
        self.clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, dict]] = {COMPONENT: {}, CHANGE_ORDER: {}}
        # every id of _docs[kind] (visible or not), sorted; kept in step by add / delete
        self._sorted: dict[str, list[str]] = {COMPONENT: [], CHANGE_ORDER: []}
        self._visible_at: dict[str, float] = {}
        self._next = {COMPONENT: 1, CHANGE_ORDER: 1}
        self._cpn_counter: dict[str, int] = {}
        self._stage_n = 0
        self._reviewer_n = 0
        self._users = [self._make_user(i) for i in range(24)]
        for _ in range(components):
            self.add_component()
        for _ in range(change_orders):
            self.add_change_order()

    # ------------------------------------------------------------- generation

    def _stamp(self, rng: random.Random) -> tuple[str, str]:
        created = BASE_TIME + dt.timedelta(seconds=rng.randrange(0, 300 * 86400))
        updated = created + dt.timedelta(seconds=rng.randrange(0, 60 * 86400))
        return rfc3339(created), rfc3339(updated)

    def _make_user(self, i: int) -> dict:
        rng = self._rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        return {"id": f"user_{i + 1:04d}", "name": f"{first} {last}",
                "primaryEmail": f"{first.lower()}.{last.lower()}@example.com"}

    def _component_name(self, key: str, rng: random.Random) -> tuple[str, str]:
        pkg = rng.choice(PACKAGES)
        if key == "res":
            v = rng.choice(["10", "100", "1k", "4.7k", "10k", "47k", "100k", "1M"])
            return (f"RES {v} {pkg} {rng.choice(['1%', '5%'])}",
                    f"Thick film chip resistor, {v} ohm, {pkg}")
        if key == "cap":
            v = rng.choice(["10pF", "100nF", "1uF", "4.7uF", "10uF", "22uF"])
            return (f"CAP {v} {pkg} {rng.choice(['X7R', 'X5R', 'C0G'])} "
                    f"{rng.choice(['6.3V', '16V', '25V', '50V'])}",
                    f"Multilayer ceramic capacitor, {v}, {pkg}")
        if key == "ind":
            v = rng.choice(["1uH", "2.2uH", "4.7uH", "10uH"])
            return f"IND {v} {pkg}", f"Power inductor, {v}"
        if key == "ic":
            p = rng.choice(IC_PARTS)
            return f"IC {p}", f"Integrated circuit {p}"
        if key == "con":
            p = rng.choice(CON_PARTS)
            return f"CONN {p}", f"Connector, {p}"
        if key == "pcb":
            return (f"PCB {rng.choice(PRODUCTS)} main board",
                    f"{rng.choice([2, 4, 6])}-layer FR-4 printed circuit board")
        if key == "scr":
            m = rng.choice(["M2", "M2.5", "M3", "M4"])
            return (f"SCREW {m}x{rng.choice([4, 6, 8, 10, 12])} pan head",
                    f"Stainless steel machine screw, {m}")
        if key == "enc":
            return (f"ENCLOSURE {rng.choice(PRODUCTS)}",
                    f"{rng.choice(['Aluminium', 'ABS', 'Polycarbonate'])} enclosure")
        if key == "cbl":
            return (f"CABLE {rng.choice([150, 300, 500, 1000])}mm harness",
                    "Cable assembly with crimped terminals")
        if key == "asy":
            return f"ASSY {rng.choice(PRODUCTS)} sub-assembly", "Mechanical and electrical sub-assembly"
        if key == "prd":
            return f"{rng.choice(PRODUCTS)} {rng.choice(['Mk I', 'Mk II', 'Pro', 'Lite'])}", "Top-level product"
        return f"DOC {rng.choice(DOC_KINDS)}", "Controlled document"

    @staticmethod
    def _revision(status: str, rng: random.Random) -> str:
        if status == "DESIGN":
            return ""
        if status == "PROTOTYPE":
            return str(rng.randint(1, 3))
        return "ABCDEF"[rng.randint(0, 5)]

    def _new_component(self, n: int) -> dict:
        rng = self._rng
        cat_name, code, prefix = rng.choice(CATEGORIES)
        key = code.lower()
        counter = self._cpn_counter.get(prefix, 0) + 1
        self._cpn_counter[prefix] = counter
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        name, description = self._component_name(key, rng)
        created, updated = self._stamp(rng)
        return {"id": component_id(n), "cpn": f"{prefix}-{counter:05d}", "name": name,
                "description": description, "revision": self._revision(status, rng),
                "status": status, "category": {"name": cat_name, "code": code},
                "createdAt": created, "updatedAt": updated}

    def _new_change_order(self, n: int) -> dict:
        rng = self._rng
        status = rng.choices(["draft", "open", "resolved", "closed", "on_hold"], [1, 4, 3, 2, 1])[0]
        if status in ("draft", "open", "on_hold"):
            resolution = "pending"
        elif status == "closed":
            resolution = "approved"
        else:
            resolution = rng.choice(["approved", "rejected", "withdrawn"])
        stages = []
        for s in range(rng.randint(1, 3)):
            self._stage_n += 1
            reviewers = []
            for _ in range(rng.randint(1, 3)):
                self._reviewer_n += 1
                if resolution == "pending":
                    decision = rng.choice(DECISIONS)
                elif resolution == "approved":
                    decision = "approved"
                else:
                    decision = rng.choice(["approved", "rejected"])
                reviewers.append({"id": f"reviewer_{self._reviewer_n:06d}", "decisionState": decision,
                                  "user": rng.choice(self._users)})
            states = {r["decisionState"] for r in reviewers}
            stage_state = ("rejected" if "rejected" in states
                           else "approved" if states == {"approved"} else "pending")
            stages.append({"id": f"stage_{self._stage_n:06d}", "name": STAGE_NAMES[s],
                           "decisionState": stage_state, "reviewers": reviewers})
        created, updated = self._stamp(rng)
        return {"id": change_order_id(n), "name": f"ECO-{n:05d}: {rng.choice(CO_TOPICS)}",
                "description": f"Change order {n} raised by {rng.choice(self._users)['name']}",
                "status": status, "resolution": resolution, "stages": stages,
                "createdAt": created, "updatedAt": updated}

    # ------------------------------------------------------------- reading

    def _visible(self, rid: str, now: float) -> bool:
        t = self._visible_at.get(rid)
        return t is None or now >= t

    def get(self, kind: str, ids: Iterable[str]) -> dict[str, dict]:
        """The visible documents among ``ids``, by id (missing/invisible ones are absent)."""
        now = self.clock()
        docs = self._docs[kind]
        with self._lock:
            out = {}
            for rid in ids:
                d = docs.get(rid)
                if d is not None and self._visible(rid, now):
                    out[rid] = d
            return out

    def list_ids(self, kind: str, visible_only: bool = True) -> list[str]:
        """Every id of ``kind`` (only the visible ones unless ``visible_only`` is false), sorted."""
        now = self.clock()
        with self._lock:
            ids = self._sorted[kind]
            if not visible_only or not self._visible_at:
                return list(ids)
            return [rid for rid in ids if self._visible(rid, now)]

    def page(self, kind: str, after: str | None, first: int | None
             ) -> tuple[list[tuple[str, dict]], bool, int]:
        """One page of the whole library of ``kind`` in id order (the order of ``list_ids``):
        (the first ``first`` visible (id, document) pairs whose id sorts after ``after``
        (from the start when None; ``after`` need not exist any more), whether visible ids
        follow them, how many visible ids the kind has). ``first`` None: all of them.
        Costs a binary search plus the page (and the hidden ids it passes over)."""
        now = self.clock()
        docs = self._docs[kind]
        with self._lock:
            ids = self._sorted[kind]
            i = 0 if after is None else bisect.bisect_right(ids, after)
            out: list[tuple[str, dict]] = []
            more = False
            n = len(ids)
            while i < n:
                rid = ids[i]
                i += 1
                if not self._visible(rid, now):
                    continue
                if first is not None and len(out) >= first:
                    more = True
                    break
                out.append((rid, docs[rid]))
            hidden = sum(1 for rid, t in self._visible_at.items() if now < t and rid in docs)
            return out, more, n - hidden

    def component_ids(self) -> list[str]:
        return self.list_ids(COMPONENT)

    def change_order_ids(self) -> list[str]:
        return self.list_ids(CHANGE_ORDER)

    def component(self, rid: str) -> dict | None:
        return self.get(COMPONENT, [rid]).get(rid)

    def change_order(self, rid: str) -> dict | None:
        return self.get(CHANGE_ORDER, [rid]).get(rid)

    def exists(self, rid: str) -> bool:
        """True when the resource exists, visible or not."""
        with self._lock:
            return rid in self._docs[kind_of(rid)]

    # ------------------------------------------------------------- writing

    def add(self, kind: str, doc: dict | None = None, *, visible_at: float | None = None,
            **fields) -> str:
        """Adds a generated resource (``fields`` override generated ones; ``doc`` replaces
        the generated document, its ``id`` kept when given). Returns the id."""
        with self._lock:
            n = self._next[kind]
            self._next[kind] = n + 1
            new = self._new_component(n) if kind == COMPONENT else self._new_change_order(n)
            if doc is not None:
                new = dict(doc, id=doc.get("id", new["id"]))
            new.update(fields)
            rid = new["id"]
            if rid not in self._docs[kind]:
                bisect.insort(self._sorted[kind], rid)
            self._docs[kind][rid] = new
            if visible_at is not None:
                self._visible_at[rid] = visible_at
            return rid

    def add_component(self, doc: dict | None = None, **kw) -> str:
        return self.add(COMPONENT, doc, **kw)

    def add_change_order(self, doc: dict | None = None, **kw) -> str:
        return self.add(CHANGE_ORDER, doc, **kw)

    def update(self, rid: str, **fields) -> dict:
        """Replaces the document with a copy carrying ``fields`` (updatedAt set to now unless
        given). Raises KeyError for an unknown id."""
        kind = kind_of(rid)
        with self._lock:
            old = self._docs[kind][rid]
            new = dict(old)
            new["updatedAt"] = rfc3339(self.clock())
            new.update(fields)
            new["id"] = rid
            self._docs[kind][rid] = new
            return new

    def delete(self, rid: str) -> bool:
        """Removes the resource; True when it existed."""
        kind = kind_of(rid)
        with self._lock:
            self._visible_at.pop(rid, None)
            if self._docs[kind].pop(rid, None) is None:
                return False
            ids = self._sorted[kind]
            del ids[bisect.bisect_left(ids, rid)]
            return True

    def appear_later(self, rid: str, *, at: float | None = None, delay_s: float | None = None) -> None:
        """Hides an existing resource until ``at`` (clock time) or ``delay_s`` from now."""
        if (at is None) == (delay_s is None):
            raise ValueError("give exactly one of at= or delay_s=")
        when = at if at is not None else self.clock() + delay_s
        with self._lock:
            if rid not in self._docs[kind_of(rid)]:
                raise KeyError(rid)
            self._visible_at[rid] = when

    def show(self, rid: str) -> None:
        """Makes a resource hidden by appear_later visible now."""
        with self._lock:
            self._visible_at.pop(rid, None)

    def counts(self) -> dict:
        with self._lock:
            return {k: len(v) for k, v in self._docs.items()}
