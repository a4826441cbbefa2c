"""A hub in a subprocess for the zero-loss tests: a real `Uplink` with an on-disk outbox sends
numbered messages at a steady rate, then waits until the broker has all of them.

After each `send()` returns (the message is committed) it writes the number to a progress
file; started again after a SIGKILL, it resumes after that number. Message ids are derived
from the number, so a message re-made after a crash (committed, but killed before the
progress file said so) keeps its id and the centre deduplicates it.

    HUB_PASSWORD=... python -m tests.support.hub_zero_loss_sender --hub-id hub-1 --host 127.0.0.1 --port N \\
        --outbox DIR/outbox.db --progress DIR/progress.json --count 600 --rate 25
"""

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from hub_agent.uplink import Uplink
from tests.support.hub_zero_loss_support import numbered_message, read_progress


def write_progress(path: Path, last: int) -> None:
    """Atomically: a crash leaves the old number or the new one, never half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"last": last}))
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub-id", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--deliver-timeout", type=float, default=90.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uplink = Uplink(hub_id=args.hub_id, password=os.environ["HUB_PASSWORD"], host=args.host, port=args.port,
                    outbox_path=args.outbox, reconnect_max_delay_s=1)
    uplink.start()
    first = read_progress(args.progress) + 1
    print(f"resuming at {first} with {uplink.unacked} messages in the outbox", file=sys.stderr, flush=True)
    started = time.monotonic()
    for n in range(first, args.count):
        due = started + (n - first) / args.rate
        time.sleep(max(0.0, due - time.monotonic()))
        uplink.send(numbered_message(args.hub_id, n))
        write_progress(args.progress, n)
    delivered = uplink.wait_until_delivered(args.deliver_timeout)
    uplink.stop(timeout=5)
    print(f"finished: delivered={delivered} refused={uplink.refused}", file=sys.stderr, flush=True)
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
