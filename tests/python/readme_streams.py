"""Server-streaming grpcurl examples of the README (a tablet watching its bill), for
readme_examples.py.

The README runs such a command "in a second terminal": grpcurl prints each message the
server sends (as JSON, one after another, `{}` for an empty one) until Ctrl-C, while the
reader goes on with the next steps in the first terminal. So does this module: the call
runs in the background from its line on, printing what grpcurl would (prefixed with
`[second terminal]`), and the block's later lines run meanwhile. At the end of the block
it is stopped, as with Ctrl-C.

What it must print is written in the `#` comment lines directly above it: every fragment
in backticks that reads as grpcurl output (starting with `{` or `"`) is one message, in
order. `{}` must be the whole message; any other fragment must occur in it, e.g.
`"status": "TRADE_STATUS_PAID"`. The stream passes when its first message came at once
(before the next line runs, within FIRST_MESSAGE_TIMEOUT), it printed exactly as many
messages as the comments name, each matching its fragment, and it did not fail.
"""

import re
import threading
import time

import grpc
from google.protobuf import json_format

# The first message must come this soon: the README promises it at once.
FIRST_MESSAGE_TIMEOUT = 10.0
# How long the later messages may take to come once the block's lines have run.
LATER_MESSAGES_TIMEOUT = 10.0
# After the last expected message, how long to listen for an unexpected one.
QUIET_AFTER_LAST = 0.5
# A backticked fragment of grpcurl output in a comment.
EXPECTED_FRAGMENT = re.compile(r"`([{\"][^`]*)`")

_print_lock = threading.Lock()


def say(text):
    """Prints `text` whole, even while a stream prints from its own thread."""
    with _print_lock:
        print(text, flush=True)


def expected_messages(comments):
    """The fragments of grpcurl output the comments name, in order."""
    return EXPECTED_FRAGMENT.findall(" ".join(comments))


def matches(fragment, printed):
    if fragment.strip() == "{}":
        return printed.strip() == "{}"
    return fragment in printed


class Watch:
    """A server-streaming call running in the background, and what it printed."""

    def __init__(self, label, responses, pool, expected):
        """`responses` is the call as grpc returns it (an iterator that can be
        cancelled); `pool` resolves the messages' types for printing them."""
        self.label = label
        self.expected = expected
        self._responses = responses
        self._pool = pool
        self._started = time.monotonic()
        self._printed = []  # (seconds since the call started, text)
        self._error = None
        self._ended = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for response in self._responses:
                text = json_format.MessageToJson(response, indent=2, descriptor_pool=self._pool)
                with self._changed:
                    self._printed.append((time.monotonic() - self._started, text))
                    self._changed.notify_all()
                say("\n".join(f"[second terminal] {line}" for line in text.splitlines()))
        except grpc.RpcError as err:
            if not (self._stopping and err.code() == grpc.StatusCode.CANCELLED):
                self._error = f"{err.code().name}: {err.details()}"
                say(f"[second terminal] ERROR: {self._error}")
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def wait_for(self, count, timeout):
        """Waits until `count` messages were printed or the stream ended; whether
        they were."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._printed) < count and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return len(self._printed) >= count

    def stop(self):
        """Ends the call as Ctrl-C ends grpcurl."""
        self._stopping = True
        self._responses.cancel()
        self._thread.join(timeout=10)

    def first_message(self):
        """(ok, detail) of the first message coming at once."""
        if self.wait_for(1, FIRST_MESSAGE_TIMEOUT):
            return True, f"first message after {self._printed[0][0]:.2f} s"
        why = self._error or f"nothing within {FIRST_MESSAGE_TIMEOUT:.0f} s"
        return False, f"no first message: {why}"

    def finish(self):
        """Waits for the expected messages, stops the call, and judges what it
        printed: (ok, detail)."""
        if self.wait_for(len(self.expected), LATER_MESSAGES_TIMEOUT):
            # Anything more would come right behind the last expected message.
            self.wait_for(len(self.expected) + 1, QUIET_AFTER_LAST)
        self.stop()
        printed = [text for _, text in self._printed]
        times = ", ".join(f"{at:.2f}" for at, _ in self._printed)
        problems = []
        if self._error is not None:
            problems.append(f"the stream failed: {self._error}")
        if len(printed) != len(self.expected):
            problems.append(
                f"printed {len(printed)} message(s), the comments name {len(self.expected)}"
            )
        for n, (fragment, text) in enumerate(zip(self.expected, printed), 1):
            if not matches(fragment, text):
                problems.append(f"message {n} does not show `{fragment}`")
        if problems:
            return False, "; ".join(problems)
        return True, f"printed the {len(printed)} message(s) the comments name (at {times} s)"
