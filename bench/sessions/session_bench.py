#!/usr/bin/env python3
"""Throughput and latency of herd's interactive data path, on a local cluster over loopback.

  bench/sessions/session_bench.py [--bin build/bin] [--mib 256] [--keys 200] [--auth munge|none]

Starts scripts/local-cluster (one emulated node; MUNGE, as deployed, unless --auth none or
munged is not installed), then measures:
  * pipe baseline: the same bytes through `head | cat` (no herd), MB/s: what the machine allows
  * exec stream:  `herd exec JOB -- head -c N /dev/zero`, its stdout to /dev/null (pipes: the
                  relay, herd-noded and herd's window, nothing dropped), MB/s
  * run stream:   the same through `herd run` (submit, wait, attach), MB/s from its start
  * port-forward: `herd port-forward JOB 0:PORT`; a client reads N bytes that a server in the
                  job sends, MB/s (download), and sends N bytes it reads (upload), MB/s
  * key echo:     one key at a time typed into `herd attach` of a `--pty` job running
                  `stty raw -echo; cat`, the time until it comes back (p50, p99, max), ms
Prints one line per figure and the command line that reproduces them. Needs root (the cluster's
herd-noded runs jobs as their users) and python3 on the node for the forward's server.
"""

import argparse
import os
import pty
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def herd(env, *args, **kw):
    return subprocess.run(["herd", *args], env=env, capture_output=True, text=True, **kw)


def wait_running(env, job, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = herd(env, "show", job, "--json")
        if '"state": "RUNNING"' in r.stdout or '"state":"RUNNING"' in r.stdout:
            return
        time.sleep(0.2)
    raise SystemExit(f"job {job} did not run: {r.stdout}{r.stderr}")


def submit(env, *args):
    r = herd(env, "submit", "-q", *args)
    if r.returncode != 0:
        raise SystemExit(f"submit failed: {r.stderr}")
    job = r.stdout.strip()
    wait_running(env, job)
    return job


def stream_mbs(cmd, env, nbytes):
    # The consumer reads 1 MiB at a time and keeps nothing, so it is not what limits the figure
    # (a reader that collects everything, as subprocess.run does, measures itself at ~200 MB/s).
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err)
        buf = bytearray(1 << 20)
        got = 0
        while True:
            n = p.stdout.readinto(buf)
            if not n:
                break
            got += n
        p.stdout.close()
        code = p.wait()
        dt = time.perf_counter() - t0
        if code != 0 or got != nbytes:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)}: exit {code}, {got} bytes: "
                             f"{err.read().decode(errors='replace')}")
    return nbytes / dt / 1e6, dt


SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
block = bytes(1 << 20)
while True:
    c, _ = s.accept()
    try:
        mode = c.recv(1)
        n = int(sys.argv[2])
        if mode == b"d":
            for _ in range(n >> 20): c.sendall(block)
        elif mode == b"u":
            got = 0
            while got < n:
                b = c.recv(1 << 20)
                if not b: break
                got += len(b)
            c.sendall(b"k")
        else:
            c.sendall(b"k")  # a ping: the server is up
    except OSError:
        pass  # a client that went away ends its connection, not the server
    c.close()
"""


def forward_ping(local):
    with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
        s.sendall(b"p")
        if s.recv(1) != b"k":
            raise SystemExit("no answer through the forward")


def forward_mbs(env, job_port, local, nbytes, mode):
    s = socket.create_connection(("127.0.0.1", local))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    s.sendall(mode)
    buf = bytearray(1 << 20)
    got = 0
    if mode == b"d":
        while got < nbytes:
            n = s.recv_into(buf)
            if n == 0:
                break
            got += n
    else:
        block = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            s.sendall(block)
        got = nbytes if s.recv(1) == b"k" else 0
    dt = time.perf_counter() - t0
    s.close()
    if got != nbytes:
        raise SystemExit(f"forward {mode}: {got} of {nbytes} bytes")
    return nbytes / dt / 1e6, dt


def key_echo(env, job, keys):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("herd", ["herd", "attach", job], env)
    out = b""
    deadline = time.time() + 30
    # The job prints READY once its terminal is raw and cat runs.
    while b"READY" not in out and time.time() < deadline:
        if select.select([fd], [], [], 1)[0]:
            out += os.read(fd, 4096)
    if b"READY" not in out:
        raise SystemExit(f"no prompt from herd attach: {out!r}")
    times = []
    for i in range(keys):
        key = bytes([ord("a") + i % 26])
        t0 = time.perf_counter()
        os.write(fd, key)
        seen = b""
        while key not in seen:
            if not select.select([fd], [], [], 5)[0]:
                raise SystemExit("a key did not come back within 5 s")
            seen += os.read(fd, 4096)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)  # typing, not a flood
    os.write(fd, b"\r~.")
    os.waitpid(pid, 0)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99) - 1], times[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--auth", choices=["munge", "none"], default="munge")
    a = ap.parse_args()
    nbytes = a.mib << 20
    auth = "munge" if a.auth == "munge" and shutil.which("munged") else "none"
    d = tempfile.mkdtemp(prefix="herd-session-bench-")
    os.chmod(d, 0o755)
    extra = os.path.join(d, "extra.toml")
    with open(extra, "w") as f:
        f.write('[projects.default]\ndeserved = { gpu = 8 }\nmembers = ["*"]\n')
    start = [os.path.join(ROOT, "scripts", "local-cluster"), "start", d, "--bin", a.bin,
             "--auth", auth, "--config-extra", extra,
             "ws01=" + os.path.join(ROOT, "etc", "topologies", "workstation-4gpu.xml")]
    subprocess.run(start, check=True, capture_output=True)
    env = dict(os.environ, HERD_CONFIG=os.path.join(d, "herd.toml"),
               PATH=a.bin + ":" + os.environ["PATH"])
    try:
        print(f"herd session bench: {a.mib} MiB per stream, {a.keys} keys, auth {auth}, "
              f"loopback; 2-core VM, shared")
        print("command: bench/sessions/session_bench.py " + " ".join(sys.argv[1:]))
        def measure(name, fn):
            try:
                print(f"{name:24} {fn()}", flush=True)
            except (SystemExit, OSError, subprocess.SubprocessError) as e:
                print(f"{name:24} failed: {e}", flush=True)

        def pipe_baseline():
            # The same bytes through a plain pipe and one copy (cat) to the same reader: what
            # this machine allows now, to read the figures below against (the VM may be shared).
            mbs, dt = stream_mbs(["sh", "-c", f"head -c {nbytes} /dev/zero | cat"], env, nbytes)
            return f"{mbs:8.1f} MB/s   ({dt:.2f} s, head | cat, no herd)"
        measure("pipe baseline", pipe_baseline)

        job = submit(env, "--pty", "--", "sleep", "600")

        def exec_stream():
            mbs, dt = stream_mbs(["herd", "exec", "-T", job, "--", "head", "-c", str(nbytes),
                                  "/dev/zero"], env, nbytes)
            return f"{mbs:8.1f} MB/s   ({dt:.2f} s)"
        measure("exec stream (pipes)", exec_stream)

        def run_stream():
            mbs, dt = stream_mbs(["herd", "run", "--", "head", "-c", str(nbytes), "/dev/zero"],
                                 env, nbytes)
            return f"{mbs:8.1f} MB/s   ({dt:.2f} s, submit and start included)"
        measure("run stream", run_stream)

        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        job_port = port.getsockname()[1]
        port.close()
        server = submit(env, "--", "/usr/bin/python3", "-c", SERVER, str(job_port), str(nbytes))
        fwd = subprocess.Popen(["herd", "port-forward", server, f"0:{job_port}"], env=env,
                               stderr=subprocess.PIPE, text=True)
        line = fwd.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            raise SystemExit(f"port-forward: {line}")
        local = int(m.group(1))
        deadline = time.time() + 30
        while True:  # the server may still be starting
            try:
                forward_ping(local)
                break
            except (SystemExit, OSError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        for mode, name in ((b"d", "port-forward download"), (b"u", "port-forward upload")):
            def fwd_stream(mode=mode):
                mbs, dt = forward_mbs(env, job_port, local, nbytes, mode)
                return f"{mbs:8.1f} MB/s   ({dt:.2f} s)"
            measure(name, fwd_stream)
        fwd.terminate()

        echo = submit(env, "--pty", "--", "sh", "-c", "stty raw -echo; echo READY; exec cat")

        def key_echo_ms():
            p50, p99, worst = key_echo(env, echo, a.keys)
            return f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.2f} ms"
        measure("key echo (attach, pty)", key_echo_ms)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "local-cluster"), "stop", d],
                       capture_output=True)


if __name__ == "__main__":
    main()
