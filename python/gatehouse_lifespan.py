"""The ASGI lifespan protocol for one worker: startup before the worker says
READY, shutdown when it leaves.

--lifespan auto (the default) uses it when the app supports it: an app that
raises on the lifespan scope before answering startup does not, and serves
without it. --lifespan on makes that a boot failure; off never calls it.
In every mode lifespan.startup.failed is a boot failure.
"""

import asyncio
import sys
import traceback

from gatehouse_asgi_response import ASGI


class Lifespan:
    def __init__(self, app, mode, state):
        self.app = app
        self.mode = mode
        self.state = state
        self.task = None
        self.inbox = None
        self.answer = None  # a future: the app's reply to the message just sent

    async def startup(self):
        """None when the worker may serve, else why it cannot (a boot failure)."""
        if self.mode == "off":
            return None
        loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue()
        self.task = loop.create_task(self.main())
        reply = await self.ask("lifespan.startup")
        if reply is None:  # the app left the lifespan call
            failure = self.task.exception() if not self.task.cancelled() else None
            self.task = None
            if self.mode == "on":
                detail = "".join(traceback.format_exception(type(failure), failure, failure.__traceback__)) if failure else ""
                return "%sASGI lifespan startup failed: the app does not support lifespan (--lifespan on)\n" % detail
            # Not an error: many apps know only HTTP (stdout is the info log).
            print("ASGI lifespan not supported by the app (%s); serving without it" % describe(failure), flush=True)
            return None
        if reply["type"] == "lifespan.startup.failed":
            return "ASGI lifespan startup failed: %s\n" % (reply.get("message") or "(no message)")
        return None

    async def shutdown(self, timeout):
        if self.task is None or self.task.done():
            return
        try:
            reply = await asyncio.wait_for(self.ask("lifespan.shutdown"), timeout)
        except asyncio.TimeoutError:
            sys.stderr.write("ASGI lifespan shutdown did not finish within %ss\n" % timeout)
            return
        if reply is not None and reply["type"] == "lifespan.shutdown.failed":
            sys.stderr.write("ASGI lifespan shutdown failed: %s\n" % (reply.get("message") or "(no message)"))

    async def ask(self, message_type):
        """Sends a message; the reply, or None when the app returned or raised instead."""
        self.answer = asyncio.get_running_loop().create_future()
        await self.inbox.put({"type": message_type})
        await asyncio.wait((self.answer, self.task), return_when=asyncio.FIRST_COMPLETED)
        return self.answer.result() if self.answer.done() else None

    async def main(self):
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        await self.app(scope, self.inbox.get, self.send)

    async def send(self, message):
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(message)


def describe(exc):
    if exc is None:
        return "it returned at once"
    return "%s: %s" % (type(exc).__name__, exc)
