"""The garbage collector's settings for a server process (gameapp/asgi.py,
gameapp/wsgi.py), applied once the app is loaded.

CPython's full collection walks every tracked object, and a loaded app holds
about 145,000 of them (Django, DRF, botocore's service model), nearly all of
which live as long as the process. The GIL is held throughout, so every
request in the process waits. Two workloads showed it:

- Submissions (gunicorn, 2 workers x 4 threads, 8 clients posting): a full
  collection every 10 s or so per worker, 100-210 ms each on a 2-core
  machine, during which the worker's four requests wait. With this, requests
  over 50 ms fell from 99-350 to 31-161 in 6,000 (three alternating runs);
  throughput in bench/api_submit.py did not move beyond its noise (the
  ratio 0.70-0.75 against 0.67-0.74 without, three alternating runs).
- Websockets (bench/fanout.py): thousands of sockets, each with its
  consumer's tasks and futures, and every board update replaces some of them
  with new ones that live long enough to reach the oldest generation. A full
  collection ran every second or two and took 0.6-0.9 s at 5,000 sockets;
  the 10,000-socket fan-out p99 was about 1 s on an idle machine, 0.48 s
  with this.

So what start-up loaded is frozen out of all later collections (Python's
``gc.freeze``: the few cycles of start-up garbage among it are never
freed), and a full collection waits for 1,000 collections of the middle
generation instead of 10. Cycles made by requests are still collected, by
the younger generations and by the rarer full collections.
"""

import gc


def freeze_startup() -> None:
    """Call once, in a server process, after the app is loaded."""
    gc.freeze()
    gc.set_threshold(*gc.get_threshold()[:2], 1000)
