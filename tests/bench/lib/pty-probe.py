#!/usr/bin/env python3
"""Drives a command (here `docker exec -it ...`) from the master side of a real pty, the way a terminal
emulator would, and measures keystroke echo and bulk output. It is the "bare" limit the web terminals are
compared with: nothing sits between this loop and the docker client but the kernel's pty.

The algorithm is the same as tests/bench/lib/probe.ts uses for the web terminals:
  echo: at the prompt, send one byte, wait until that byte comes back, record the time; every 50 keys
        clear the line with Ctrl-U and let the terminal go quiet (not timed).
  bulk: type `yes | head -c N; echo BENCH''END` and time until "BENCHEND" arrives, counting bytes.

Usage: pty-probe.py echo COUNT -- argv...   |   pty-probe.py bulk BYTES -- argv...
Prints one JSON object on stdout.
"""
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time

ESC = re.compile(rb'\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]')
PROMPT = re.compile(rb'\$ $')


def read_some(fd, timeout):
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return b''
    try:
        return os.read(fd, 65536)
    except OSError:
        raise EOFError('pty closed')


def wait_for(fd, pred, timeout, buf=b''):
    end = time.monotonic() + timeout
    while not pred(buf):
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError('waited %.0f s; last output %r' % (timeout, ESC.sub(b'', buf)[-300:]))
        buf += read_some(fd, left)
    return buf


def drain(fd, quiet=0.05):
    while read_some(fd, quiet):
        pass


def echo(fd, count):
    samples = []
    keys = b'abcdefghijklmnopqrstuvwxyz'
    for i in range(count):
        if i and i % 50 == 0:
            os.write(fd, b'\x15')
            drain(fd)
        k = keys[i % len(keys):i % len(keys) + 1]
        t0 = time.perf_counter()
        os.write(fd, k)
        wait_for(fd, lambda b: k in b, 10)
        samples.append((time.perf_counter() - t0) * 1000)
    os.write(fd, b'\x15')
    drain(fd)
    return {'samplesMs': samples}


def bulk(fd, nbytes):
    marker = b'BENCHEND'
    cmd = ("yes | head -c %d; echo BENCH''END\r" % nbytes).encode()
    t0 = time.perf_counter()
    os.write(fd, cmd)
    got = 0
    tail = b''
    end = time.monotonic() + 600
    while True:
        chunk = read_some(fd, max(0.0, end - time.monotonic()))
        if not chunk:
            raise TimeoutError('bulk output did not finish')
        got += len(chunk)
        tail = (tail + chunk)[-64:]
        if marker in tail:
            break
    secs = time.perf_counter() - t0
    wait_for(fd, lambda b: PROMPT.search(ESC.sub(b'', b)) is not None, 30, tail)
    return {'seconds': secs, 'bytesReceived': got}


def main():
    mode, amount = sys.argv[1], int(sys.argv[2])
    argv = sys.argv[sys.argv.index('--') + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
    try:
        t0 = time.perf_counter()
        wait_for(fd, lambda b: PROMPT.search(ESC.sub(b'', b)) is not None, 60)
        ready_ms = (time.perf_counter() - t0) * 1000
        drain(fd)
        result = echo(fd, amount) if mode == 'echo' else bulk(fd, amount)
        result['promptMs'] = ready_ms
        os.write(fd, b'exit\r')
        print(json.dumps(result))
    finally:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
        # A client that outlives the hangup (incus exec can) is killed after a grace period, not waited on forever.
        end = time.monotonic() + 5
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)


if __name__ == '__main__':
    main()
