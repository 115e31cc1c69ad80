"""cport's chaos experiments: senders killed at random, two servers on one PostgreSQL,
misbehaving SMTP servers. Run by scripts/chaos, which builds cport and starts PostgreSQL.

Every experiment counts, per digest (by its Message-ID), what a counting SMTP server on
loopback received, and reads the outbox afterwards. It prints expected / delivered / lost /
duplicated / stuck and fails on any loss, any row left unfinished, or a duplicate that no kill
explains (a kill between the server's 250 and the row being marked), or more such duplicates
for one kill than one per sender (a sender's next delivery waits for the previous one's mark,
so at most one delivered message per sender is ever unmarked). The counting server offers
PIPELINING, as Postfix does, so the senders take their pipelined path.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from email.parser import BytesHeaderParser

from aiosmtpd.smtp import SMTP

# The fake SMTP server's behaviours are the test suite's (tests/smtp_server.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
from smtp_server import Behaviour  # noqa: E402

WORKERS = 4
# Seconds by which a kill may precede the server's note of the message it interrupted.
SLACK = 0.5


class Counter(Behaviour):
    """An SMTP server that records each accepted message's Message-ID and the moment it
    said 250. Modes: tempfail for the first seconds, reject one recipient, hang on one
    recipient, or take a while over each message."""

    def __init__(self, tempfail_seconds=0.0, reject=None, hang=None, delay=0.0):
        super().__init__(delay, hang)
        self.deliveries = []  # (message_id, recipient, time)
        self.lock = threading.Lock()
        self.started = time.time()
        self.tempfail_seconds = tempfail_seconds
        self.reject = reject

    def rejects(self, address):
        return bool(self.reject) and self.reject in address

    def tempfails(self, address):
        return time.time() - self.started < self.tempfail_seconds

    async def handle_DATA(self, server, session, envelope):
        await self.pause()
        headers = BytesHeaderParser().parsebytes(envelope.original_content)
        with self.lock:
            self.deliveries.append((headers.get("Message-ID", "").strip(), ",".join(envelope.rcpt_tos), time.time()))
        return "250 accepted"

    def start(self):
        ready = threading.Event()
        holder = {}

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            srv = loop.run_until_complete(loop.create_server(lambda: SMTP(self), "127.0.0.1", 0))
            holder["port"] = srv.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        self.port = holder["port"]
        return self


class Store:
    """The outbox, read directly (SQLite file or PostgreSQL through psql)."""

    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        if self.url.startswith("sqlite://"):
            con = sqlite3.connect(self.url[len("sqlite://"):], timeout=30)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        out = subprocess.run(["psql", self.url, "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True)
        return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]

    def execute(self, sql):
        if self.url.startswith("sqlite://"):
            con = sqlite3.connect(self.url[len("sqlite://"):], timeout=30)
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
        else:
            subprocess.run(["psql", self.url, "-qc", sql], check=True, capture_output=True)

    def statuses(self):
        return {s: int(n) for s, n in self.rows("SELECT status, COUNT(*) FROM outbox WHERE kind = 'digest' GROUP BY status")}

    def message_ids(self):
        """Each digest's Message-ID: its row and status. A digest dropped because the next
        period's replaced it while it waited reads as `superseded`; one dropped for any other
        reason stays `dropped` (and counts as lost)."""
        ids = {}
        sql = (
            "SELECT id, payload, CASE WHEN status = 'dropped' AND last_error LIKE 'superseded by the digest of%'"
            " THEN 'superseded' ELSE status END FROM outbox_full WHERE kind = 'digest'"
        )
        for rid, payload, status in self.rows(sql):
            ids[json.loads(payload)["message_id"]] = (int(rid), status)
        return ids


class Lab:
    def __init__(self, binary, engine, pg_admin, work):
        self.binary = binary
        self.engine = engine
        self.pg_admin = pg_admin
        self.work = work
        self.n = 0

    def fresh(self, name, smtp_port, clients, extra=""):
        """A new store with `clients` generated clients and a config for it."""
        self.n += 1
        d = os.path.join(self.work, f"{self.n:02d}-{name}-{self.engine}")
        os.makedirs(d)
        if self.engine == "sqlite":
            url = f"sqlite://{d}/cport.db"
        else:
            db = f"chaos_{os.getpid()}_{self.n}"
            subprocess.run(["psql", self.pg_admin, "-qc", f"CREATE DATABASE {db}"], check=True)
            url = self.pg_admin.rsplit("/", 1)[0] + "/" + db
        config = os.path.join(d, "cport.toml")
        with open(config, "w") as f:
            f.write(f"""listen = "127.0.0.1:0"
database_url = "{url}"
data_dir = "{d}"
api_token = "chaos-api-token-0123456789"
link_secret = "chaos-link-secret-0123456789abcdef"
[email]
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_seconds = 2
[outbox]
workers = {WORKERS}
lease_seconds = 3
backoff_base_seconds = 1
backoff_max_seconds = 2
max_attempts = 5
send_timeout_seconds = 10
[alerts]
visual_approval = "digest"
{extra}
""")
        data = os.path.join(d, "data.json")
        self.cport(config, "gen-data", "--clients", str(clients), "--jobs", str(clients * 10), "-o", data)
        self.cport(config, "import", data)
        return config, Store(url), d

    def cport(self, config, *args, check=True):
        return subprocess.run([self.binary, "--config", config, *args], check=check, capture_output=True, text=True)

    def spawn(self, config, *args, log=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        return subprocess.Popen([self.binary, "--config", config, *args], stdout=out, stderr=out)


def drain(lab, config, store, deadline_seconds=120, log=None):
    """Runs `cport outbox send` until no digest is waiting (bounded in time)."""
    end = time.time() + deadline_seconds
    while time.time() < end:
        s = store.statuses()
        if not any(s.get(k, 0) for k in ("queued", "sending", "failed")):
            return
        p = lab.spawn(config, "outbox", "send", log=log)
        p.wait(timeout=max(1, end - time.time()))
        time.sleep(0.2)


def verdict(name, engine, counter, store, kills, workers=WORKERS, allowed_dead=0, starts=()):
    ids = store.message_ids()
    statuses = store.statuses()
    with counter.lock:
        deliveries = list(counter.deliveries)
    by_id = {}
    for mid, _rcpt, t in deliveries:
        by_id.setdefault(mid, []).append(t)
    dead = statuses.get("dead", 0)
    # A digest superseded by the next period's while it waited (a period boundary crossed
    # during the run) is dropped by design: not expected, not lost. Any other drop is lost.
    superseded = sum(1 for _, st in ids.values() if st == "superseded")
    expected = len(ids) - dead - superseded
    delivered = sum(1 for m in ids if m in by_id)
    lost = sum(1 for m, (_, st) in ids.items() if st not in ("dead", "superseded") and m not in by_id)
    stuck = sum(statuses.get(k, 0) for k in ("queued", "sending", "failed"))
    unexplained = 0
    per_kill = {}
    duplicated = 0
    for mid, times in by_id.items():
        times.sort()
        for a, b in zip(times, times[1:]):
            duplicated += 1
            # The server notes a message when it has read all of it; a sender killed just
            # after writing the end of data is killed a moment before that note.
            # The kill that explains it. A kill just before the server's note explains it
            # when no sender had started since (the note is then the killed sender's last
            # message); otherwise the first kill after the first delivery.
            before = [k for k in kills if a - SLACK <= k < a and not any(k < s < a for s in starts)]
            after = [k for k in kills if a <= k <= b]
            between = before[-1:] or after[:1]
            if not between:
                unexplained += 1
                near = min(kills, key=lambda k: abs(k - a), default=None)
                print(f"    unexplained duplicate {mid}: delivered at {a:.3f} and {b:.3f}; nearest kill {near}")
            else:
                per_kill[between[0]] = per_kill.get(between[0], 0) + 1
    worst = max(per_kill.values(), default=0)
    ok = lost == 0 and stuck == 0 and unexplained == 0 and worst <= workers and dead <= allowed_dead
    print(
        f"{name:<34} {engine:<9} expected {expected:>4}  delivered {delivered:>4}  lost {lost}  "
        f"duplicated {duplicated} (unexplained {unexplained}, most for one kill {worst})  stuck {stuck}  "
        f"dead {dead}  kills {len(kills)}  {'ok' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def kill_senders(lab, short, engine):
    counter = Counter().start()
    config, store, d = lab.fresh("kill-9", counter.port, 15 if short else 80)
    lab.cport(config, "digest", "run", "--no-send")
    kills = []
    starts = []
    target = 5 if short else 50
    end = time.time() + (60 if short else 600)
    while len(kills) < target and time.time() < end:
        if not any(store.statuses().get(k, 0) for k in ("queued", "sending", "failed")):
            # Everything went before the kills ran out: queue the same digests again.
            lab.cport(config, "digest", "run", "--no-send", "--force")
        starts.append(time.time())
        p = lab.spawn(config, "outbox", "send", log=os.path.join(d, "send.log"))
        time.sleep(random.uniform(0.05, 0.5))
        if p.poll() is None:
            kills.append(time.time())
            p.send_signal(signal.SIGKILL)
        p.wait()
    drain(lab, config, store, log=os.path.join(d, "send.log"))
    return verdict(f"(a) kill -9 the sender x{len(kills)}", engine, counter, store, kills, starts=starts)


def two_servers(lab, short, engine):
    counter = Counter().start()
    # Daily at midnight, caught up for a day: the current period is due in both processes.
    extra = '[digest]\nschedule = "0 0 0 * * *"\ncatch_up_hours = 24\ntick_seconds = 1\n'
    config, store, d = lab.fresh("two-servers", counter.port, 15 if short else 60, extra)
    # A store that has run a while: its contacts were known when the period began (a contact
    # added after a slot waits for the next one).
    store.execute("UPDATE contacts SET created_at = '2000-01-01T00:00:00+00:00'")
    log = os.path.join(d, "serve.log")
    a = lab.spawn(config, "serve", log=log)
    b = lab.spawn(config, "serve", log=log)
    time.sleep(random.uniform(1.0, 2.0))
    kills = [time.time()]
    a.send_signal(signal.SIGKILL)
    a.wait()
    end = time.time() + 90
    while time.time() < end:
        s = store.statuses()
        if sum(s.values()) > 0 and not any(s.get(k, 0) for k in ("queued", "sending", "failed")):
            break
        time.sleep(0.3)
    b.send_signal(signal.SIGTERM)
    try:
        b.wait(timeout=15)
        stopped = True
    except subprocess.TimeoutExpired:
        b.kill()
        stopped = False
    ok = verdict("(b) two serve, one killed", engine, counter, store, kills)
    recipients = {}
    for _mid, rcpt, _t in counter.deliveries:
        recipients[rcpt] = recipients.get(rcpt, 0) + 1
    extra_per_contact = sum(n - 1 for n in recipients.values())
    if not stopped:
        print("    the surviving server did not stop within 15 s of SIGTERM: FAIL")
    print(f"    {len(recipients)} contacts got a digest; extra copies to a contact: {extra_per_contact}")
    if not recipients:
        print("    no digest was sent: FAIL")
    return ok and stopped and bool(recipients) and extra_per_contact <= WORKERS


def bad_servers(lab, short, engine):
    results = []
    cases = [
        ("(c) 451 for the first 2 s", Counter(tempfail_seconds=2), 0),
        ("(c) 550 for one recipient", None, 1),
        ("(c) accepts, then hangs for one", None, 1),
        ("(c) slow: 0.5 s a message, 2 senders", Counter(delay=0.5), 0),
    ]
    for name, counter, allowed_dead in cases:
        probe = Counter().start()
        config, store, d = lab.fresh("bad-server", probe.port, 6 if short else 25)
        victim = store.rows("SELECT email FROM contacts WHERE role = 'admin' ORDER BY id LIMIT 1")[0][0]
        if counter is None:
            counter = Counter(reject=victim) if "550" in name else Counter(hang=victim)
        counter.start()
        with open(config) as f:
            text = f.read().replace(f"port = {probe.port}", f"port = {counter.port}")
        with open(config, "w") as f:
            f.write(text)
        lab.cport(config, "digest", "run", "--no-send")
        log = os.path.join(d, "send.log")
        if "slow" in name:
            # Two processes at once on a server slower than a lease's third per message.
            ps = [lab.spawn(config, "outbox", "send", log=log) for _ in range(2)]
            for p in ps:
                p.wait(timeout=180)
        if "hangs" in name:
            # SIGTERM while a send hangs: the sender returns within the SMTP timeout.
            p = lab.spawn(config, "outbox", "send", log=log)
            time.sleep(1.0)
            t0 = time.time()
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
                took = time.time() - t0
                print(f"    SIGTERM during a hung send: returned in {took:.1f} s")
            except subprocess.TimeoutExpired:
                p.kill()
                print("    SIGTERM during a hung send: did not return within 15 s: FAIL")
                results.append(False)
        drain(lab, config, store, log=log)
        ok = verdict(name, engine, counter, store, [], allowed_dead=allowed_dead)
        if allowed_dead:
            reasons = store.rows("SELECT last_error FROM outbox WHERE status = 'dead'")
            print(f"    dead, as it should be: {reasons[0][0][:90] if reasons else 'none'}")
            ok = ok and len(reasons) == allowed_dead
        results.append(ok)
    return all(results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], required=True)
    ap.add_argument("--pg-url", default="")
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    random.seed(args.seed)
    print(f"seed {args.seed}", flush=True)
    work = tempfile.mkdtemp(prefix="cport-chaos-")
    lab = Lab(args.binary, args.engine, args.pg_url, work)
    ok = kill_senders(lab, args.short, args.engine)
    if args.engine == "postgres":
        ok = two_servers(lab, args.short, args.engine) and ok
    ok = bad_servers(lab, args.short, args.engine) and ok
    print(f"logs and stores kept in {work}" if not ok else "", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
