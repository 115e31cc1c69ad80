"""A real SMTP server for the tests (aiosmtpd), on a loopback port it picks itself.

Usage: python3 tests/smtp_server.py DIR [--delay SECONDS] [--hang SUBSTRING] [--drop SUBSTRING]
                                         [--one-per-connection] [--no-pipelining] [--busy N]
                                         [--slow-rcpt SECONDS] [--password PASS]
                                         [--refuse-from SUBSTRING]
Prints the port on the first line of stdout once it is listening, then stores every message
as DIR/<n>.eml with DIR/<n>.json holding the envelope (mail_from, rcpt_tos).
Recipients whose address contains "tempfail" are refused with a 451 the first time each is
seen; those containing "reject" always get a 550 (5.1.1), those containing "norelay" a bare
550 refusing to relay (a relay's policy, not the address). --delay makes every message take that
long to accept (a slow server); --slow-rcpt makes each RCPT take that long to answer (a
server slow before the message is sent); --hang makes the server go silent, for good, once a recipient
containing SUBSTRING is named (a server that accepts and then hangs). --drop stores a message
to a recipient containing SUBSTRING and closes the connection before answering its end of
data (a connection lost after the message was taken); --one-per-connection closes each
connection after answering its first message (an idle connection the server dropped);
--busy N answers the first N MAIL commands with a 421 and closes the connection (a server
too busy for now). --password makes AUTH required, taking any user name with PASS and refusing
any other password with a 535 (a login refused); --refuse-from answers MAIL with a 550 5.7.1 when
the sender contains SUBSTRING (a relay that will not take mail from that address). The server offers
PIPELINING (RFC 2920; it reads commands in order either way) unless --no-pipelining is given.
"""
import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Behaviour:
    """What the test server and the chaos experiments' counting server share: PIPELINING
    offered or not, a recipient to hang on for good, recipients refused for good (550) or
    for now (451), and a pause before each message is taken. Subclasses say who is refused
    (`rejects`, `tempfails`) and what happens to a message (`handle_DATA`)."""

    def __init__(self, delay=0.0, hang=None, pipelining=True):
        self.delay = delay
        self.hang = hang
        self.pipelining = pipelining
        self.rcpt_delay = 0.0

    def rejects(self, address):
        return False

    def tempfails(self, address):
        return False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.hang and self.hang in address:
            await asyncio.Event().wait()
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.rejects(address):
            return "550 5.1.1 Mailbox unavailable: no such user here"
        if "norelay" in address:
            return f"550 relaying to {address} prohibited by administrator"
        if self.tempfails(address):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def pause(self):
        if self.delay:
            await asyncio.sleep(self.delay)


class Handler(Behaviour):
    def __init__(self, directory, delay=0.0, hang=None, pipelining=True, drop=None, one=False, busy=0):
        super().__init__(delay, hang, pipelining)
        self.dir = directory
        self.drop = drop
        self.one = one
        self.busy = busy
        self.refuse_from = None
        self.count = 0
        self.tempfailed = set()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_from and self.refuse_from in address:
            return "550 5.7.1 Sender address rejected: not permitted to send from it"
        if self.busy > 0:
            self.busy -= 1
            await server.push("421 4.7.0 Too busy for now, try again later")
            server.transport.close()
            return "421 4.7.0 Too busy for now, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    def rejects(self, address):
        return "reject" in address

    def tempfails(self, address):
        if "tempfail" in address and address not in self.tempfailed:
            self.tempfailed.add(address)
            return True
        return False

    async def handle_DATA(self, server, session, envelope):
        # Marks that a message's data has come, before any --delay: a test can act while
        # the sender waits for the answer.
        open(os.path.join(self.dir, "receiving"), "w").close()
        await self.pause()
        self.count += 1
        base = os.path.join(self.dir, f"{self.count:06d}")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "helo": session.host_name}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        if self.drop and any(self.drop in r for r in envelope.rcpt_tos):
            server.transport.close()
        elif self.one:
            await server.push("250 Message accepted for delivery")
            server.transport.close()
        # (Written to a closed connection, the reply goes nowhere.)
        return "250 Message accepted for delivery"


def main():
    directory = sys.argv[1]
    args = sys.argv[2:]
    delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.0
    hang = args[args.index("--hang") + 1] if "--hang" in args else None
    os.makedirs(directory, exist_ok=True)
    drop = args[args.index("--drop") + 1] if "--drop" in args else None
    busy = int(args[args.index("--busy") + 1]) if "--busy" in args else 0
    handler = Handler(
        directory, delay, hang, "--no-pipelining" not in args, drop, "--one-per-connection" in args, busy
    )
    if "--slow-rcpt" in args:
        handler.rcpt_delay = float(args[args.index("--slow-rcpt") + 1])
    if "--refuse-from" in args:
        handler.refuse_from = args[args.index("--refuse-from") + 1]
    login = {}
    if "--password" in args:
        password = args[args.index("--password") + 1].encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=getattr(auth_data, "password", None) == password, handled=False)

        login = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, enable_SMTPUTF8=True, **login), "127.0.0.1", 0)
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
