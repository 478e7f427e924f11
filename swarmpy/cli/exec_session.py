"""`service exec`'s side of an exec: the terminal, stdin, and the output as it comes.

The output is read from the manager in this thread; stdin (with `-i`) is
sent from another, a read at a time, and its end is sent as EOF. With `-t` on
a terminal, the terminal is raw for the session (keys go to the command as
typed, Ctrl-C included) and its size follows the window's."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import sys
import threading

EXIT_CANNOT_EXEC = 126  # docker's code when the command could not be run


def _pump_stdin(client, exec_id: str) -> None:
    try:
        while data := os.read(sys.stdin.fileno(), 4096):
            client.exec_input(exec_id, data)
        client.exec_input(exec_id, eof=True)
    except Exception:  # noqa: BLE001 - the exec ended (or the manager went) while input was sent
        pass


def _size() -> tuple[int, int]:
    columns, lines = shutil.get_terminal_size()
    return columns, lines


def run(client, ref: str, slot: int | None, command: list[str], interactive: bool, tty: bool) -> int:
    """Run the command in a task of the service; its exit code."""
    raw = tty and interactive and sys.stdin.isatty()
    started = client.exec_start(ref, command, slot=slot, tty=tty, stdin=interactive,
                                size=_size() if tty and sys.stdout.isatty() else None)
    exec_id, saved = started["id"], None
    if raw:
        import termios
        import tty as terminal
        saved = termios.tcgetattr(sys.stdin.fileno())
        terminal.setraw(sys.stdin.fileno(), termios.TCSANOW)  # keys typed ahead are kept
        signal.signal(signal.SIGWINCH, lambda *_: client.exec_input(exec_id, size=_size()))
    if interactive:
        threading.Thread(target=_pump_stdin, args=(client, exec_id), daemon=True).start()
    try:
        for frame in client.exec_output(exec_id):
            if "exit" in frame:
                return frame["exit"]
            if "error" in frame:
                print(f"error: {frame['error']}", file=sys.stderr)
                return EXIT_CANNOT_EXEC
            out = sys.stdout if "out" in frame else sys.stderr
            out.buffer.write(base64.b64decode(frame.get("out") or frame.get("err") or ""))
            out.buffer.flush()
        print("error: the manager ended the exec's output before its exit code", file=sys.stderr)
        return EXIT_CANNOT_EXEC
    finally:
        if saved is not None:
            import termios
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
