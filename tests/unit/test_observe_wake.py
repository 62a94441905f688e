"""Wakes from watcher threads reach the event loop coalesced: one loop callback per burst."""

import asyncio
import threading

from fastrollout.handlers import Waker


def test_burst_from_a_thread_is_delivered_once_per_key() -> None:
    delivered: list[tuple[str, str]] = []

    async def scenario() -> None:
        waker = Waker(delivered.append)
        waker("io-dev", "early")  # before the loop is attached: kept, not lost
        waker.attach(asyncio.get_running_loop())

        def burst() -> None:
            for i in range(4000):
                waker("io-dev", "web" if i % 2 else "api")

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    # 4,000 wakes from another thread arrive as at most a few loop callbacks, each key once per drain.
    assert set(delivered) == {("io-dev", "early"), ("io-dev", "web"), ("io-dev", "api")}
    assert len(delivered) <= 6
