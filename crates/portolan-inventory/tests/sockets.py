#!/usr/bin/env python3
"""Opens listening sockets for portolan's inventory tests and benchmarks, then waits.

    sockets.py --ready FILE [--comm NAME] SPEC...
        SPEC is PROTO:ADDR:PORT[:OPT,...] with PROTO tcp, udp, tcp6 or udp6 and ADDR an
        address (IPv6 in brackets). OPTs: v6only, dual (IPV6_V6ONLY off), reuseport,
        dev=IFACE (SO_BINDTODEVICE), share (a child process holds it too),
        connect=ADDR:PORT (a connected UDP socket).
    sockets.py --ready FILE --bulk N [--addr 127.0.0.1] [--base 10000]
        N TCP listeners and N UDP sockets on ports BASE..BASE+N-1, spread over
        processes of at most 10,000 sockets each (the open-file limit).

FILE is written once every socket is open (and every child is ready). The processes
end when the parent is killed (children get SIGKILL with it).
"""
import ctypes
import os
import resource
import signal
import socket
import sys
import time

PER_PROCESS = 10000


def die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def endpoint(text):
    if text.startswith("["):
        addr, port = text[1:].split("]:")
    else:
        addr, port = text.rsplit(":", 1)
    return addr, int(port)


def open_spec(spec):
    proto, rest = spec.split(":", 1)
    opts = []
    if rest.startswith("["):
        end = rest.index("]")
        addr = rest[1:end]
        tail = rest[end + 2:].split(":", 1)
    else:
        parts = rest.split(":", 2)
        addr, tail = parts[0], parts[1:]
    port = int(tail[0])
    opts = tail[1].split(",") if len(tail) > 1 else []
    family = socket.AF_INET6 if proto.endswith("6") else socket.AF_INET
    kind = socket.SOCK_STREAM if proto.startswith("tcp") else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for o in opts:
        if o == "v6only":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        elif o == "dual":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        elif o == "reuseport":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        elif o.startswith("dev="):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, o[4:].encode())
    s.bind((addr, port))
    for o in opts:
        if o.startswith("connect="):
            s.connect(endpoint(o[len("connect="):]))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s, "share" in opts


def open_bulk(n, addr, base):
    socks = []
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        for i in range(n):
            s = socket.socket(family, kind)
            s.bind((addr, base + i))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
            socks.append(s)
    return socks


def forever():
    while True:
        time.sleep(3600)


def child(work):
    """Forks a child that runs work() and then waits; returns once it is ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        die_with_parent()
        keep = work()  # noqa: F841 (the sockets must stay referenced)
        os.write(w, b"k")
        os.close(w)
        forever()
    os.close(w)
    os.read(r, 1)
    os.close(r)
    return pid


def main(argv):
    raise_nofile()
    if "--comm" in argv:
        # The process name tests look for (PR_SET_NAME), e.g. a stand-in for systemd.
        name = argv[argv.index("--comm") + 1].encode()[:15]
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
    ready = argv[argv.index("--ready") + 1]
    held = []
    if "--bulk" in argv:
        n = int(argv[argv.index("--bulk") + 1])
        addr = argv[argv.index("--addr") + 1] if "--addr" in argv else "127.0.0.1"
        base = int(argv[argv.index("--base") + 1]) if "--base" in argv else 10000
        # Each process opens up to PER_PROCESS/2 ports of each protocol.
        step = PER_PROCESS // 2
        for start in range(0, n, step):
            count = min(step, n - start)
            child(lambda s=start, c=count: open_bulk(c, addr, base + s))
    else:
        specs = [a for i, a in enumerate(argv[1:], 1) if not a.startswith("--")
                 and argv[i - 1] not in ("--ready", "--comm")]
        opened = [open_spec(s) for s in specs]
        held = [s for s, _ in opened]
        shared = [s for s, share in opened if share]
        if shared:
            def keep_shared():
                for s, share in opened:
                    if not share:
                        s.close()
                return shared
            child(keep_shared)
    with open(ready + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(ready + ".tmp", ready)
    del held  # the sockets stay open: `opened` still holds them
    forever()


if __name__ == "__main__":
    main(sys.argv)
