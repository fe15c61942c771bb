"""srbench.threads: helper threads kept between calls, nesting, fork."""

import os
import threading

import pytest

from srbench import threads


def test_in_threads_reuses_its_helper_threads():
    helpers: list[set[threading.Thread]] = []
    for _ in range(3):
        seen: set[threading.Thread] = set()
        threads.in_threads(lambda t, seen=seen: seen.add(threading.current_thread()), 3)
        helpers.append(seen - {threading.current_thread()})
    assert helpers[0], "no helper thread ran a part"
    # The same thread objects, still alive between calls, not new ones each time.
    assert len(helpers[0] | helpers[1] | helpers[2]) <= 2
    assert all(t.is_alive() for t in helpers[0])


def test_in_threads_nested_in_its_own_threads_runs_every_part():
    done = []
    lock = threading.Lock()

    def outer(t):
        def inner(u):
            with lock:
                done.append((t, u))

        threads.in_threads(inner, 2)

    threads.in_threads(outer, 3)
    assert sorted(done) == [(t, u) for t in range(3) for u in range(2)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_in_threads_works_in_a_forked_child():
    threads.in_threads(lambda t: None, 2)  # the parent has helper threads now
    pid = os.fork()
    if pid == 0:  # the child: its own helper threads, or it would wait forever
        result = []
        threads.in_threads(result.append, 2)
        os._exit(0 if sorted(result) == [0, 1] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
