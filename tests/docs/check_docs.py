#!/usr/bin/env python3
"""Checks of the manual pages in man/ and of `cmake --install`.

  check_docs.py lint    --man DIR --config TOML every page formats without a warning, and
                                                herd.toml(5) names every key of etc/herd.toml
  check_docs.py options --man DIR --herd BIN [--ctld BIN] [--noded BIN] [--web BIN]
                                                every option of --help is on its page, and
                                                every option a page documents exists
  check_docs.py install --man DIR --cmake CMAKE --build DIR
                                                DESTDIR install lands every file in its place
  check_docs.py layout  --root DIR               README's Layout section names every message
                                                family of ctld/rpc/ and the files a new message
                                                touches; every family is in the one table; no
                                                file under ctld/ passes 600 lines; nothing
                                                dispatches on a message type with if/else

Exit status: 0 pass, 1 fail, 77 skip (a tool is missing).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def pages(man_dir):
    """Names of the page files in man_dir (herd.1, herd.toml.5, ...)."""
    return sorted(f for f in os.listdir(man_dir) if re.fullmatch(r".+\.[158]", f))


def so_target(path):
    """The page a `.so manN/PAGE` file points to, or None for a real page."""
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    return first.split(None, 1)[1] if first.startswith(".so ") else None


def lint(args):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    if shutil.which("man"):
        cmd = ["man", "--warnings", "-l", "-Tutf8"]
    elif shutil.which("groff"):
        cmd = ["groff", "-t", "-man", "-ww", "-z", "-Tutf8"]
    else:
        print("SKIP: neither man nor groff is installed (apt-get install man-db groff-base)")
        return SKIP
    failures = 0
    for name in pages(args.man):
        path = os.path.join(args.man, name)
        target = so_target(path)
        if target:  # a link page: its target must exist in the same tree
            if not os.path.exists(os.path.join(args.man, os.path.basename(target))):
                print(f"FAIL {name}: .so target {target} is missing")
                failures += 1
            continue
        with open(path, encoding="utf-8") as f:
            stray = [n for n, line in enumerate(f, 1)
                     if any(ord(ch) < 32 and ch not in "\t\n" for ch in line)]
        if stray:  # e.g. a form feed where \\fB was meant: groff shows it as a bare letter
            print(f"FAIL {name}: control characters on lines {stray[:5]}")
            failures += 1
            continue
        r = subprocess.run(cmd + [path], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        if r.returncode != 0 or r.stderr.strip():
            print(f"FAIL {name}: {' '.join(cmd)} exit {r.returncode}\n{r.stderr}")
            failures += 1
        else:
            print(f"ok   {name}")
    failures += config_keys(args)
    return 1 if failures else 0


def config_keys(args):
    """Count of keys and tables of etc/herd.toml that herd.toml(5) does not mention."""
    with open(args.config, encoding="utf-8") as f:
        toml = f.read()
    with open(os.path.join(args.man, "herd.toml.5"), encoding="utf-8") as f:
        page = plain(f.read())
    names = set(re.findall(r"^#?\s*([a-z_]+)\s*=", toml, re.M))  # key = value, set or not
    names |= set(re.findall(r"^#\s+([a-z_]+)\s{2,}", toml, re.M))  # keys described in a list
    names |= set(re.findall(r"^#?\s*\[([a-z_]+)[.\]]", toml, re.M))  # tables
    missing = sorted(n for n in names if not re.search(r"(?<![\w-])" + n + r"(?![\w-])", page))
    for n in missing:
        print(f"FAIL herd.toml.5 does not document '{n}' of {args.config}")
    print(f"herd.toml.5: {len(names) - len(missing)}/{len(names)} keys and tables of "
          f"{os.path.basename(args.config)} documented")
    return len(missing)


def run_help(argv):
    r = subprocess.run(argv + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} --help exited {r.returncode}:\n{r.stdout}")
    return r.stdout


def section(text, title):
    """Lines of a CLI11 help section ("Options:", "Subcommands:") up to the next blank line."""
    lines, inside = [], False
    for line in text.splitlines():
        if line == title:
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            lines.append(line)
    return lines


def help_options(text):
    """{long-or-short name: (all names, argument words)} of the Options section of a --help."""
    opts = {}
    for line in section(text, "Options:"):
        if not re.match(r"  -", line):
            continue  # a description continued on its own line
        # CLI11 starts descriptions at column 30; a longer head has its description below.
        head = line[:29] if len(line) > 30 and line[29] == " " else line
        head = re.split(r" (?:Excludes|Needs|REQUIRED)\b|\s+\[", head)[0]
        words = head.split()
        names = words[0].split(",")
        # "TEXT:KEY=VAL", "INT:NONNEGATIVE": a page may name any part; "...", "x 2" are counts.
        # "TEXT=/etc/herd/herd.toml" shows a default after the "=".
        arg = [[w] + w.split(":") for w in (re.sub(r"^([A-Z]+)=.*", r"\1", w) for w in words[1:])
               if w not in ("...", "x") and not w.isdigit()]
        opts[names[-1]] = (names, arg)
    return opts


def help_subcommands(text):
    return [line.split()[0] for line in section(text, "Subcommands:")]


def plain(roff_line):
    """A roff line as text: fonts dropped, \\- as -."""
    line = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[^]]*\]", "", roff_line)
    return line.replace("\\-", "-").replace("\\(dq", '"')


def page_options(path, sections):
    """{long name: option header line} of the .TP entries in the named sections of a page."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found, current = {}, None
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            current = line[3:].strip().strip('"')
        elif line == ".TP" and current in sections and i + 1 < len(lines):
            header = plain(lines[i + 1])
            m = re.search(r"(?:^|\s)(--[\w-]+|-\w)\b", header)
            if m:
                names = re.findall(r"(?:^|[\s,])(--[\w-]+|-\w)(?=[\s,]|$)", header)
                found[names[-1]] = header
    return found


def compare(label, help_text, page_path, sections, failures):
    """Appends to failures every mismatch between a --help and a page."""
    if not os.path.exists(page_path):
        failures.append(f"{label}: no page {os.path.basename(page_path)}")
        return
    documented = page_options(page_path, sections)
    wanted = help_options(help_text)
    for key, (names, arg) in wanted.items():
        header = documented.get(key)
        if header is None:
            failures.append(f"{label}: {key} is not documented in {page_path}")
            continue
        words = header.replace(",", " ").split()
        for n in names:
            if n not in words:
                failures.append(f"{label}: {key}: name {n} missing from '{header}'")
        for alternatives in arg:
            if not any(a in words for a in alternatives):
                failures.append(f"{label}: {key}: argument {alternatives[0]} "
                                f"missing from '{header}'")
    for key in documented:
        if key not in wanted:
            failures.append(f"{label}: {page_path} documents {key}, which --help does not have")


def options(args):
    failures = []
    man = args.man
    top = run_help([args.herd])
    compare("herd", top, os.path.join(man, "herd.1"), {"GLOBAL OPTIONS"}, failures)
    for verb in help_subcommands(top):
        text = run_help([args.herd, verb])
        if verb == "admin":
            page = os.path.join(man, "herd-admin.8")
            compare("herd admin", text, page, {"OPTIONS"}, failures)
            # A subcommand's own options live in a section of their own ("DRAIN OPTIONS").
            for sub in help_subcommands(text):
                compare(f"herd admin {sub}", run_help([args.herd, verb, sub]), page,
                        {"OPTIONS", f"{sub.upper()} OPTIONS"}, failures)
            continue
        page = os.path.join(man, f"herd-{verb}.1")
        if os.path.exists(page) and so_target(page):
            page = os.path.join(man, os.path.basename(so_target(page)))
        compare(f"herd {verb}", text, page, {"OPTIONS"}, failures)
    for label, binary in (("herd-ctld", args.ctld), ("herd-noded", args.noded),
                          ("herd-web", args.web)):
        if binary:
            compare(label, run_help([binary]), os.path.join(man, f"{label}.8"), {"OPTIONS"},
                    failures)
    for f in failures:
        print("FAIL", f)
    print(f"{len(failures)} mismatches")
    return 1 if failures else 0


def install(args):
    failures = []
    with tempfile.TemporaryDirectory(prefix="herd-install-") as destdir:
        prefix = "/opt/herd-test"
        env = dict(os.environ, DESTDIR=destdir)
        r = subprocess.run([args.cmake, "--install", args.build, "--prefix", prefix], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if r.returncode != 0:
            print(f"FAIL cmake --install exited {r.returncode}:\n{r.stdout}")
            return 1
        root = destdir + prefix
        expected = {"bin/herd": True, "bin/herd-sim": True, "sbin/herd-ctld": True,
                    "sbin/herd-noded": True,
                    "sbin/herd-shim": True, "sbin/herd-chdir": True,
                    "lib/systemd/system/herd-ctld.service": False,
                    "lib/systemd/system/herd-noded.service": False,
                    "lib/systemd/system/herd-web.service": False,
                    "share/doc/herd/herd.toml.example": False}
        if os.path.exists(os.path.join(args.build, "bin", "herd-web")):  # needs cpp-httplib
            expected["sbin/herd-web"] = True
        for name in pages(args.man):
            expected[f"share/man/man{name[-1]}/{name}"] = False
        for rel, executable in sorted(expected.items()):
            path = os.path.join(root, rel)
            if not os.path.isfile(path):
                failures.append(f"{rel} was not installed")
            elif executable and not os.access(path, os.X_OK):
                failures.append(f"{rel} is not executable")
        # Everything must land under the prefix given on the command line.
        for dirpath, _, files in os.walk(destdir):
            for f in files:
                path = os.path.join(dirpath, f)
                if not path.startswith(root + "/"):
                    failures.append(f"{path[len(destdir):]} was installed outside --prefix "
                                    f"{prefix} (an absolute DESTINATION?)")
    for f in failures:
        print("FAIL", f)
    print(f"{len(expected)} expected files, {len(failures)} problems")
    return 1 if failures else 0


MAX_CTLD_LINES = 600


def layout(args):
    root = args.root
    failures = []
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    section = re.sub(r"\s+", " ", m.group(1)) if m else ""
    if not section:
        failures.append("README.md has no '## Layout' section")
    # The files a new message touches, as the section names them, must exist.
    for path in ("common/proto/messages.h", "common/proto/codec.cc", "ctld/rpc/table.cc",
                 "ctld/rpc/rpc.h", "noded/commands.cc"):
        if f"`{path}`" not in section:
            failures.append(f"README's Layout section does not name `{path}`")
        if not os.path.exists(os.path.join(root, path)):
            failures.append(f"{path} (named by README's Layout section) does not exist")
    # Every family file defines its routes, is listed in the table and named in the README.
    rpc = os.path.join(root, "ctld", "rpc")
    with open(os.path.join(rpc, "table.cc"), encoding="utf-8") as f:
        table = f.read()
    families = 0
    for name in sorted(os.listdir(rpc)):
        if not name.endswith(".cc") or name == "table.cc":
            continue
        with open(os.path.join(rpc, name), encoding="utf-8") as f:
            text = f.read()
        routes = re.findall(r"std::span<const rpc::Route> rpc::(\w+Routes)\(\)", text)
        if len(routes) != 1:
            failures.append(f"ctld/rpc/{name} defines {len(routes)} route lists; a family has one")
            continue
        families += 1
        if not re.search(rf"\b{routes[0]}\b", table):
            failures.append(f"ctld/rpc/{name}: {routes[0]} is not in ctld/rpc/table.cc")
        if f"`{name}`" not in section:
            failures.append(f"README's Layout section does not name the family `{name}`")
    # herd-ctld, its scheduler core included, stays in files one can read whole.
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "ctld")):
        for name in filenames:
            if not name.endswith((".cc", ".h")):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                lines = sum(1 for _ in f)
            if lines > MAX_CTLD_LINES:
                failures.append(f"{os.path.relpath(path, root)} has {lines} lines, more than "
                                f"{MAX_CTLD_LINES}: split it along a seam")
    # Messages are dispatched by their tables, never by comparing their type.
    chain = re.compile(r"\b(e|envelope)\.type\s*==")
    for sub in ("ctld", "noded"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, sub)):
            for name in filenames:
                if not name.endswith(".cc"):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        if chain.search(line):
                            failures.append(f"{os.path.relpath(path, root)}:{n}: dispatches on "
                                            "a message type with if/else; add a route instead")
    for f in failures:
        print("FAIL", f)
    print(f"{families} message families in ctld/rpc/, {len(failures)} problems")
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["lint", "options", "install", "layout"])
    p.add_argument("--man")
    p.add_argument("--root", help="the source tree (layout)")
    p.add_argument("--herd")
    p.add_argument("--ctld")
    p.add_argument("--noded")
    p.add_argument("--web")
    p.add_argument("--config", help="etc/herd.toml")
    p.add_argument("--cmake")
    p.add_argument("--build")
    args = p.parse_args()
    return {"lint": lint, "options": options, "install": install, "layout": layout}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
