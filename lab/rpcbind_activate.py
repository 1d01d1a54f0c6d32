"""Start rpcbind on loopback only: bind its sockets here and hand them over (systemd socket activation).

rpcbind binds every address by itself, and its `-h` option (UDP only anyway) crashes rpcbind 1.2.6
("free(): double free detected"). Debian's rpcbind is built with libsystemd: given sockets through
LISTEN_FDS it serves those and binds nothing more, as long as one is given for every transport it knows
(tcp, udp, tcp6, udp6, local). Run as a script, standalone (no project imports):
    python rpcbind_activate.py RPCBIND_BINARY UNIX_SOCKET_PATH
The process execs rpcbind, so its PID is rpcbind's.
"""

import os
import socket
import sys


def _inet(family: int, kind: int, address: str, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if kind == socket.SOCK_STREAM:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def main(binary: str, unix_path: str) -> None:
    socks = [
        _inet(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", 111),
        _inet(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", 111),
        _inet(socket.AF_INET6, socket.SOCK_STREAM, "::1", 111),
        _inet(socket.AF_INET6, socket.SOCK_DGRAM, "::1", 111),
    ]
    try:
        os.unlink(unix_path)  # a stale socket of an rpcbind that is gone
    except FileNotFoundError:
        pass
    local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    local.bind(unix_path)
    os.chmod(unix_path, 0o666)  # as rpcbind makes it: any local process may look services up
    local.listen(64)
    socks.append(local)
    # Move them to 3, 4, ... (SD_LISTEN_FDS_START) without clobbering one another.
    dups = [os.dup(s.fileno()) for s in socks]
    for i, fd in enumerate(dups):
        os.dup2(fd, 3 + i, inheritable=True)
    os.environ["LISTEN_FDS"] = str(len(socks))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(binary, [binary, "-f"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
