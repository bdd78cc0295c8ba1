#!/usr/bin/env python3
"""Starts and stops a throwaway PostgreSQL server (loopback only) for the
tests labelled `postgres`. The CTest fixture calls it; so can a person.

  postgres_cluster.py start  --dir DIR [--durable] [--logical] [--tls]
  postgres_cluster.py halt   --dir DIR
  postgres_cluster.py resume --dir DIR
  postgres_cluster.py stop   --dir DIR

start runs initdb and pg_ctl from PostgreSQL's bin directory (`pg_config
--bindir`, else the newest /usr/lib/postgresql/*/bin, else PATH). The server
listens on 127.0.0.1 only, on a port picked free at start, and accepts the
superuser `dispatch` with a password generated at start (scram-sha-256).
DIR/conninfo then holds the libpq connection string (database `postgres`;
mode 0600, as it holds the password) and DIR/cluster.json the details that
stop needs.

PostgreSQL refuses to run as root. Run as root (CI), the script runs
initdb and the server as the unprivileged `postgres` user (Debian's package
creates it), with the data in a fresh directory under /tmp that this user
owns: the build folder may sit where that user cannot enter. Run as anyone
else, it runs them as that user, again under /tmp. Either way DIR only
holds the files above, a lock file (runs on one DIR take turns) and, after
stop, the server's log (DIR/server.log).

By default the server trades durability for speed (fsync, synchronous_commit
and full_page_writes off, shared_buffers 32MB): the tests throw the data
away. --durable runs it as in production instead: those three on and
PostgreSQL's default memory settings (the benchmarks that compare relays,
bench/relay_vs_debezium.py, use it). --logical sets wal_level=logical, so
that a logical-decoding client (Debezium's PostgreSQL connector) can stream.

--tls turns on TLS with a certificate for localhost and 127.0.0.1 signed by
a test CA made at start (scripts/kafka_security.py's, the one the Kafka
security tests use): DIR/tls/ca.pem verifies it, DIR/tls/wrong-ca.pem is a
CA that signed nothing. Clients may still connect without TLS; one that asks
for sslmode=verify-full with DIR/tls/ca.pem gets the checked connection.

halt stops the server as a crash would (pg_ctl stop -m immediate: no
checkpoint, the next start replays the WAL) and keeps the data; resume
starts it again on the same port with the same settings. With --durable,
every transaction committed before halt is there after resume.

stop is idempotent: it stops the server of DIR/cluster.json if one runs
(fast shutdown, then SIGKILL of the postmaster's own pid, never by name),
keeps the log, and deletes the data.
"""

import argparse
import fcntl
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import kafka_security

SERVER_USER = "postgres"  # who runs the server when this script runs as root
SUPERUSER = "dispatch"
START_ATTEMPTS = 3  # a port picked free may be taken before the server binds it
STOP_TIMEOUT_S = 30


def bin_dir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        candidate = out.stdout.strip()
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    sys.exit("postgres_cluster.py: no initdb found (install Debian's postgresql: "
             "scripts/install-deps.sh)")


def server_account():
    """The (uid, gid) to run PostgreSQL as, or None for the current user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        sys.exit(f"postgres_cluster.py: running as root, and there is no '{SERVER_USER}' user "
                 "to run PostgreSQL as (Debian's postgresql package creates it)")
    return entry.pw_uid, entry.pw_gid


def run_as(account, cmd, **kwargs):
    if account is not None:
        kwargs.update(user=account[0], group=account[1], extra_groups=[])
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def start(args):
    stop(args)  # a server left behind by an interrupted run
    bindir = bin_dir()
    account = server_account()
    root = tempfile.mkdtemp(prefix="dispatch-postgres-")
    state = {"bindir": bindir, "root": root, "data": os.path.join(root, "data"),
             "log": os.path.join(root, "server.log")}
    # Written before anything can fail, so that stop cleans up after a failed start.
    write_state(args.dir, state)
    if account is not None:
        os.chown(root, *account)
    os.chmod(root, 0o700)

    password = secrets.token_urlsafe(24)
    pwfile = os.path.join(root, "pwfile")
    with open(pwfile, "w") as f:
        f.write(password + "\n")
    if account is not None:
        os.chown(pwfile, *account)
    init = run_as(account, [os.path.join(bindir, "initdb"), "-D", state["data"], "-U", SUPERUSER,
                            f"--pwfile={pwfile}", "--auth-local=trust",
                            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"], cwd=root)
    os.remove(pwfile)
    if init.returncode != 0:
        sys.exit(f"postgres_cluster.py: initdb failed:\n{init.stdout}{init.stderr}")

    if args.tls:
        tls_dir = os.path.join(args.dir, "tls")
        shutil.rmtree(tls_dir, ignore_errors=True)
        kafka_security.make_tls(tls_dir)
        for name in ("broker.pem", "broker.key"):  # the server reads them from its data folder
            target = os.path.join(state["data"], "server" + name[len("broker"):])
            shutil.copyfile(os.path.join(tls_dir, name), target)
            if account is not None:
                os.chown(target, *account)
            os.chmod(target, 0o600)
    options = ""
    if not args.durable:  # speed over durability: the data is thrown away
        options += (" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                    " -c shared_buffers=32MB")
    if args.logical:
        options += " -c wal_level=logical"
    if args.tls:
        options += " -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key"
    state["options"] = options
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        started = start_server(account, state, port)
        if started.returncode == 0:
            break
        if attempt == START_ATTEMPTS:
            sys.exit(f"postgres_cluster.py: pg_ctl start failed:\n{started.stdout}{started.stderr}\n"
                     f"--- server log:\n{tail(state['log'])}")
    state["port"] = port
    with open(os.path.join(state["data"], "postmaster.pid")) as f:
        state["pid"] = int(f.readline())
    write_state(args.dir, state)

    conninfo = os.path.join(args.dir, "conninfo")
    fd = os.open(conninfo, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"host=127.0.0.1 port={port} user={SUPERUSER} password={password} "
                "dbname=postgres connect_timeout=10\n")
    print(f"PostgreSQL ({bindir}) on 127.0.0.1:{port}, pid {state['pid']}, data in {root}")


def start_server(account, state, port):
    # Loopback TCP only; the Unix socket sits in the private root.
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} "
               f"-c unix_socket_directories={state['root']} -c max_connections=200"
               + state["options"])
    return run_as(account, [os.path.join(state["bindir"], "pg_ctl"), "start", "-D", state["data"],
                            "-l", state["log"], "-w", "-t", "60", "-o", options], cwd=state["root"])


def read_state(directory):
    path = os.path.join(directory, "cluster.json")
    if not os.path.exists(path):
        sys.exit(f"postgres_cluster.py: no server of {directory} (start one first)")
    with open(path) as f:
        return json.load(f)


def halt(args):
    state = read_state(args.dir)
    done = run_as(server_account(), [os.path.join(state["bindir"], "pg_ctl"), "stop", "-D",
                                     state["data"], "-m", "immediate", "-w",
                                     "-t", str(STOP_TIMEOUT_S)], cwd="/")
    if done.returncode != 0:
        sys.exit(f"postgres_cluster.py: pg_ctl stop -m immediate failed:\n{done.stdout}{done.stderr}")
    print(f"PostgreSQL on 127.0.0.1:{state['port']} halted (immediate); data kept")


def resume(args):
    state = read_state(args.dir)
    started = start_server(server_account(), state, state["port"])
    if started.returncode != 0:
        sys.exit(f"postgres_cluster.py: pg_ctl start failed:\n{started.stdout}{started.stderr}\n"
                 f"--- server log:\n{tail(state['log'])}")
    with open(os.path.join(state["data"], "postmaster.pid")) as f:
        state["pid"] = int(f.readline())
    write_state(args.dir, state)
    print(f"PostgreSQL on 127.0.0.1:{state['port']} resumed, pid {state['pid']}")


def write_state(directory, state):
    with open(os.path.join(directory, "cluster.json"), "w") as f:
        json.dump(state, f, indent=2)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def is_postmaster(pid, data):
    """Whether pid is still the postmaster of `data`, not a reused pid."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return data.encode() in f.read()
    except OSError:
        return False


def stop(args):
    path = os.path.join(args.dir, "cluster.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        state = json.load(f)
    pid = state.get("pid")
    if os.path.exists(os.path.join(state["data"], "postmaster.pid")):
        run_as(server_account(), [os.path.join(state["bindir"], "pg_ctl"), "stop", "-D",
                                  state["data"], "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S)],
               cwd="/")
    if pid and alive(pid) and is_postmaster(pid, state["data"]):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    if os.path.exists(state["log"]):
        shutil.copyfile(state["log"], os.path.join(args.dir, "server.log"))
    shutil.rmtree(state["root"], ignore_errors=True)
    shutil.rmtree(os.path.join(args.dir, "tls"), ignore_errors=True)
    for name in ("cluster.json", "conninfo"):
        try:
            os.remove(os.path.join(args.dir, name))
        except FileNotFoundError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "halt", "resume", "stop"])
    parser.add_argument("--dir", required=True, help="where conninfo and cluster.json go")
    parser.add_argument("--durable", action="store_true",
                        help="start: fsync, synchronous_commit, full_page_writes on, default memory")
    parser.add_argument("--logical", action="store_true", help="start: wal_level=logical")
    parser.add_argument("--tls", action="store_true",
                        help="start: TLS with a test CA's certificate (DIR/tls/ca.pem)")
    args = parser.parse_args()
    args.dir = os.path.abspath(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    # Two runs on one DIR at once (two ctest runs in one build folder) take
    # turns: otherwise the second start could overwrite cluster.json and
    # leave the first server running with nothing to stop it.
    with open(os.path.join(args.dir, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        {"start": start, "halt": halt, "resume": resume, "stop": stop}[args.command](args)


if __name__ == "__main__":
    main()
