"""Writes the SQL of the import reference: the same document loaded into the same tables by
SQLite's own JSON functions (json_each, json_extract), for the sqlite3 shell.

Usage: python3 scripts/lib/json_each_import.py STORE.db DOCUMENT.json > load.sql
Columns are matched to a record's fields by name (an entity's first record that has a field
says it exists); an array field `lines` of entity `purchase_orders` goes to the table
`purchase_order_lines`, keyed by the column that refers to the parent. A NOT NULL column no
field fills gets an empty value. Only the SQL is made here (outside the timing); the load is
the sqlite3 shell running it.
"""
import json
import sqlite3
import sys

SINGULAR = {"clients": "client", "contacts": "contact", "jobs": "job", "visuals": "visual",
            "deliveries": "delivery", "purchase_orders": "purchase_order", "price_cards": "price_card",
            "art_requirements": "art_requirement", "invoices": "invoice"}

db, path = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
doc = json.load(open(path))


def columns(table):
    return [(r[1], (r[2] or "").upper(), r[3], r[4]) for r in con.execute(f"PRAGMA table_info({table})")]


def fields(records):
    out = {}
    for r in records[:200]:
        for k, v in r.items():
            if k not in out or out[k] is None:
                out[k] = v
    return out


def select_list(table, flds, src, fixed):
    cols, exprs = [], []
    for name, typ, notnull, default in columns(table):
        if name in fixed:
            cols.append(name)
            exprs.append(fixed[name])
        elif name in flds and not isinstance(flds[name], (list, dict)):
            cols.append(name)
            exprs.append(f"json_extract({src}.value, '$.{name}')")
        elif notnull and default is None:
            cols.append(name)
            exprs.append("0" if ("INT" in typ or "BOOL" in typ) else "''")
    return cols, exprs


print(".bail on")
print("PRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\nBEGIN;")
print(f"CREATE TEMP TABLE doc AS SELECT key AS entity, value AS records FROM json_each(readfile('{path}'));")
for entity, records in doc.items():
    if not records:
        continue
    flds = fields(records)
    cols, exprs = select_list(entity, flds, "e", {})
    print(f"INSERT INTO {entity} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
          f"FROM doc, json_each(doc.records) e WHERE doc.entity = '{entity}';")
    key = "sku" if "sku" in flds and "id" not in flds else "id"
    for child_key, v in flds.items():
        if not isinstance(v, list):
            continue
        table = f"{SINGULAR.get(entity, entity)}_{child_key}"
        if not columns(table):
            continue
        parent_col = next((r[3] for r in con.execute(f"PRAGMA foreign_key_list({table})") if r[2] == entity), None)
        if parent_col is None:
            continue
        child = fields([x for r in records[:2000] for x in (r.get(child_key) or [])])
        fixed = {parent_col: f"json_extract(e.value, '$.{key}')", "line_no": "l.key + 1"}
        cols, exprs = select_list(table, child, "l", fixed)
        print(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
              f"FROM doc, json_each(doc.records) e, json_each(e.value, '$.{child_key}') l "
              f"WHERE doc.entity = '{entity}';")
print("COMMIT;")
