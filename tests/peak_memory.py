"""Peak memory of a command in its own process, for the hostile-input tests.

The command runs under a small parent whose RUSAGE_CHILDREN then counts it alone: a
child's own ru_maxrss would include the pages of the large test process it was forked
from (Linux keeps the high-water mark across exec).
"""
from __future__ import annotations

import subprocess
import sys

MEASURE = ("import resource, subprocess, sys\n"
           "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
           "sys.stdout.write(p.stdout)\n"
           "sys.stderr.write(p.stderr)\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(p.returncode)")


def measured_run(*args, cwd=None, timeout=120, env=None):
    """(CompletedProcess with the command's stdout and stderr, its peak RSS in MB)."""
    run = subprocess.run([sys.executable, "-c", MEASURE, *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    stderr, _, rss = run.stderr.rstrip().rpartition("\n")
    if not rss.strip().isdigit():  # the command wrote nothing to stderr
        stderr, rss = "", run.stderr.strip()
    run.stderr = stderr
    return run, int(rss) // 1024


def measured(*args, cwd=None, timeout=120, env=None):
    """(exit code, the lines of stderr, peak RSS in MB) of a command."""
    run, rss = measured_run(*args, cwd=cwd, timeout=timeout, env=env)
    return run.returncode, run.stderr.splitlines(), rss
