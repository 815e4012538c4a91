"""The watchdog ends a process whose block outlives its limit, and leaves one that keeps to it alone."""
import subprocess
import sys
import time

import pytest

from assignment.watchdog import EXIT_STATUS, Watchdog


def run(code, timeout=60):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "import time\nfrom assignment.watchdog import WATCHDOG\n" + code],
                          capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def test_a_block_past_its_limit_ends_the_process_and_says_why():
    """A thread stuck in a block with 1 s ends its process soon after, with the watchdog's status and message."""
    done, seconds = run('with WATCHDOG.limit(1, "the stuck work"):\n    time.sleep(30)\nprint("went on")')
    assert done.returncode == EXIT_STATUS, f"expected exit status {EXIT_STATUS}, got {done.returncode}: {done.stderr}"
    assert "the stuck work ran for more than 1 s" in done.stderr, f"expected the reason, got {done.stderr!r}"
    assert "went on" not in done.stdout and seconds < 25, f"expected the process ended at once, got {seconds:.1f} s"


def test_blocks_that_keep_to_their_limits_leave_the_process_alone():
    """Blocks that end in time, nested or one after another, in two threads, never end the process."""
    done, _ = run('import threading\n'
                  'def work():\n'
                  '    for _ in range(20):\n'
                  '        with WATCHDOG.limit(60, "outer"), WATCHDOG.limit(0.5, "inner"):\n'
                  '            time.sleep(0.01)\n'
                  'threads = [threading.Thread(target=work) for _ in range(2)]\n'
                  '[t.start() for t in threads]; [t.join() for t in threads]\n'
                  'time.sleep(1.5)\n'
                  'print("alive")')
    assert done.returncode == 0 and done.stdout == "alive\n", f"expected the process alive, got {done.returncode}: {done.stderr}"


def test_the_earliest_limit_counts_when_a_longer_one_was_armed_first():
    """A short block armed after a long one still ends the process on its own time."""
    done, seconds = run('with WATCHDOG.limit(600, "the long work"):\n'
                        '    time.sleep(0.5)  # the watchdog is waiting on the long limit\n'
                        '    with WATCHDOG.limit(1, "the short work"):\n'
                        '        time.sleep(30)')
    assert done.returncode == EXIT_STATUS and "the short work ran for more than 1 s" in done.stderr, \
        f"expected the short limit to end it, got {done.returncode}: {done.stderr!r}"
    assert seconds < 25, f"expected it ended after about 1 s, got {seconds:.1f} s"


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")])
def test_a_limit_that_is_not_a_positive_number_of_seconds_is_refused(seconds):
    """A limit of no time, of all time or of no number is an error where it is armed, never a watchdog
    that dies (an infinite wait overflows) or ends the process at once."""
    with pytest.raises(ValueError):
        with Watchdog().limit(seconds, "the work"):
            pass
