#!/usr/bin/env python3
"""Two builds' session streams side by side, taken in turn, on the same machine in the same minutes.

  bench/sessions/session_compare.py MIB ROUNDS BINDIR [BINDIR...]

Starts one local cluster per BINDIR (as session_bench.py does, MUNGE), then ROUNDS times, for each
cluster in turn: the pipe baseline, the exec stream, and a forward's download and upload of MIB
MiB. Prints every figure (MB/s) and the median of each. Needs root, as session_bench.py.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import session_bench as sb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))



def cluster(bindir):
    d = tempfile.mkdtemp(prefix="herd-stream-cmp-"); os.chmod(d, 0o755)
    extra = os.path.join(d, "extra.toml")
    open(extra, "w").write('[projects.default]\ndeserved = { gpu = 8 }\nmembers = ["*"]\n')
    subprocess.run([ROOT + "/scripts/local-cluster", "start", d, "--bin", bindir, "--auth", "munge",
                    "--config-extra", extra, "ws01=" + ROOT + "/etc/topologies/workstation-4gpu.xml"],
                   check=True, capture_output=True)
    env = dict(os.environ, HERD_CONFIG=os.path.join(d, "herd.toml"), PATH=bindir + ":" + os.environ["PATH"])
    return d, env


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    mib = int(sys.argv[1]); reps = int(sys.argv[2]); bins = [os.path.realpath(b) for b in sys.argv[3:]]
    nbytes = mib << 20
    setups = []
    for b in bins:
        d, env = cluster(b)
        job = sb.submit(env, "--pty", "--", "sleep", "600")
        port = socket.socket(); port.bind(("127.0.0.1", 0)); jp = port.getsockname()[1]; port.close()
        server = sb.submit(env, "--", "/usr/bin/python3", "-c", sb.SERVER, str(jp), str(nbytes))
        fwd = subprocess.Popen(["herd", "port-forward", server, f"0:{jp}"], env=env, stderr=subprocess.PIPE, text=True)
        local = int(re.search(r"http://127\.0\.0\.1:(\d+)/", fwd.stderr.readline()).group(1))
        dl = time.time() + 30
        while True:
            try: sb.forward_ping(local); break
            except (SystemExit, OSError):
                if time.time() > dl: raise
                time.sleep(0.2)
        setups.append((b, d, env, job, local, fwd))
    try:
        res = {b: {"exec": [], "up": [], "down": [], "pipe": []} for b in bins}
        for r in range(reps):
            for (b, d, env, job, local, fwd) in setups:
                t0 = time.perf_counter()
                subprocess.run(f"head -c {nbytes} /dev/zero | cat", shell=True, stdout=subprocess.PIPE, check=True)
                res[b]["pipe"].append(nbytes / (time.perf_counter() - t0) / 1e6)
                res[b]["exec"].append(sb.stream_mbs(["herd", "exec", "-T", job, "--", "head", "-c", str(nbytes), "/dev/zero"], env, nbytes)[0])
                res[b]["down"].append(sb.forward_mbs(env, 0, local, nbytes, b"d")[0])
                res[b]["up"].append(sb.forward_mbs(env, 0, local, nbytes, b"u")[0])
        print("command: bench/sessions/session_compare.py " + " ".join(sys.argv[1:]))
        print("load average", " ".join(open("/proc/loadavg").read().split()[:3]),
              "(2-core VM, shared)")
        for b in bins:
            for k, v in res[b].items():
                s = sorted(v)
                print(f"{b:28} {k:5} median {s[len(s)//2]:7.1f}  all " + " ".join(f"{x:.0f}" for x in v))
    finally:
        for (b, d, env, job, local, fwd) in setups:
            fwd.terminate()
            subprocess.run([ROOT + "/scripts/local-cluster", "stop", d], capture_output=True)


if __name__ == "__main__":
    main()
