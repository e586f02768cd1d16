"""Child processes under measurement: CPU seconds, peak RSS and peak anonymous memory.

A `Proc` starts a command in its own process group, reads its stdout lines on a thread
(so readiness lines such as `peer port: N` can be awaited), samples /proc/PID/status
and /proc/PID/stat every ~50 ms, and reaps the child itself with os.wait4 so the CPU
figure is the kernel's exact rusage of that child (not a 50 ms-old sample).
"""

import os
import queue
import re
import signal
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05


def read_status(pid):
    """VmRSS, VmHWM, RssAnon of PID in KiB (dict), or None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key] = int(m.group(1))
    return out


def read_cpu(pid):
    """utime+stime of PID in seconds (its own threads, not children), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Proc:
    """A measured child process. `lines` is every stdout line seen so far."""

    def __init__(self, argv, name=None, cwd=None, env=None, stdin=subprocess.DEVNULL,
                 log_path=None, merge_stderr=False):
        self.name = name or os.path.basename(argv[0])
        self.argv = argv
        if log_path:
            open(log_path, "w").close()
        # append mode: the child's stderr and our copy of its stdout share the file
        self.log = open(log_path, "a") if log_path else None
        self.t_start = time.monotonic()
        stderr = subprocess.STDOUT if merge_stderr else (self.log or subprocess.DEVNULL)
        self.p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=stderr, start_new_session=True, text=True, bufsize=1)
        self.pid = self.p.pid
        self.lines = []
        self._q = queue.Queue()
        self.peak_rss_kib = 0
        self.peak_anon_kib = 0
        self.hwm_kib = 0
        self.last_cpu = 0.0
        self.exit_code = None
        self.t_exit = None
        self.rusage = None
        self._exited = threading.Event()
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._sampler, daemon=True).start()
        threading.Thread(target=self._reaper, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            self.lines.append((time.monotonic(), line))
            self._q.put((time.monotonic(), line))
            if self.log:
                try:
                    self.log.write(line + "\n")
                    self.log.flush()
                except ValueError:
                    pass

    def _sample(self):
        st = read_status(self.pid)
        cpu = read_cpu(self.pid)
        if st:
            self.peak_rss_kib = max(self.peak_rss_kib, st.get("VmRSS", 0))
            self.peak_anon_kib = max(self.peak_anon_kib, st.get("RssAnon", 0))
            self.hwm_kib = max(self.hwm_kib, st.get("VmHWM", 0))
        if cpu is not None:
            self.last_cpu = cpu

    def _sampler(self):
        while not self._exited.is_set():
            self._sample()
            self._exited.wait(SAMPLE_S)

    def _reaper(self):
        _, status, ru = os.wait4(self.pid, 0)
        self.t_exit = time.monotonic()
        self.rusage = ru
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.exit_code  # keep Popen from reaping again
        self._exited.set()

    # --- queries -------------------------------------------------------------------
    def alive(self):
        return not self._exited.is_set()

    def cpu_s(self):
        """CPU seconds: exact rusage once reaped, else the latest /proc sample."""
        if self.rusage is not None:
            return self.rusage.ru_utime + self.rusage.ru_stime
        c = read_cpu(self.pid)
        return c if c is not None else self.last_cpu

    def mem(self):
        """Peak figures in MiB (VmHWM, sampled peak RssAnon)."""
        if self.alive():
            self._sample()
        return {"peak_rss_mib": round(max(self.hwm_kib, self.peak_rss_kib) / 1024, 1),
                "peak_anon_mib": round(self.peak_anon_kib / 1024, 1)}

    def wait_line(self, pattern, timeout):
        """Wait for a stdout line matching regex PATTERN; return (time, match) or raise."""
        rx = re.compile(pattern)
        for t, line in list(self.lines):
            m = rx.search(line)
            if m:
                return t, m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no line matching {pattern!r} within {timeout}s")
            try:
                t, line = self._q.get(timeout=min(left, 0.2))
            except queue.Empty:
                if not self.alive() and self._q.empty():
                    time.sleep(0.1)  # let the reader drain the pipe
                    if self._q.empty():
                        raise RuntimeError(f"{self.name}: exited ({self.exit_code}) before "
                                           f"{pattern!r}; last lines: {self.tail()}")
                continue
            m = rx.search(line)
            if m:
                return t, m

    def wait_exit(self, timeout):
        if not self._exited.wait(timeout):
            raise TimeoutError(f"{self.name}: still running after {timeout}s")
        return self.exit_code

    def tail(self, n=5):
        return [l for _, l in self.lines[-n:]]

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL to the process group if it lingers. Returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            if not self._exited.wait(timeout):
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._exited.wait(5)
        if self.log:
            time.sleep(0.05)
            self.log.close()
            self.log = None
        return self.exit_code


def free_port():
    """A TCP+UDP port free at this moment on 127.0.0.1."""
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def machine_state():
    """The machine's state right now, recorded just before each run starts: load average
    (1, 5, 15 min), MemFree, MemAvailable, Dirty and Writeback from /proc/meminfo (MiB).
    Dirty + writeback pages left by an earlier run (or by other processes) compete with the
    next run's writes, so a skeptic wants them beside every figure."""
    out = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "load": [round(x, 2) for x in os.getloadavg()]}
    keys = {"MemFree": "mem_free_mib", "MemAvailable": "mem_available_mib",
            "Dirty": "dirty_mib", "Writeback": "writeback_mib"}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in keys:
                    out[keys[k]] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out
