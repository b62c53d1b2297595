"""The ring buffer's C source under AddressSanitizer + UBSan, ThreadSanitizer and valgrind.

Each build compiles the same `_ringbuf.c` the package ships into a temporary directory; the
ring buffer test modules then run in a subprocess that loads that build as
`pilive.audio._ringbuf` before anything imports it, with the sanitizer runtime preloaded. Any
sanitizer report fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "daemon" / "pilive" / "audio" / "_ringbuf.c"
RINGBUF_TESTS = ["tests/unit/test_ringbuf.py", "tests/unit/test_ringbuf_stress.py"]
RUN_TIMEOUT_S = 240

# Loads the sanitized build under the real module name, checks it is the one in use, then runs
# pytest in this same process so every RingBuffer the tests make comes from that build.
BOOTSTRAP = textwrap.dedent(
    """
    import importlib.machinery, importlib.util, sys
    so_path = sys.argv[1]
    loader = importlib.machinery.ExtensionFileLoader("pilive.audio._ringbuf", so_path)
    spec = importlib.util.spec_from_file_location("pilive.audio._ringbuf", so_path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules["pilive.audio._ringbuf"] = module
    import pilive.audio
    pilive.audio._ringbuf = module
    import pilive.audio._ringbuf as in_use
    assert in_use.__file__ == so_path, in_use.__file__
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
    """
)

SANITIZER_REPORT = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|"
    r"SUMMARY: (Address|Undefined|Thread)"
)


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed")
    return path


def runtime_library(gcc: str, name: str) -> str:
    """The sanitizer runtime to preload, or skip when this gcc lacks it."""
    path = subprocess.run(
        [gcc, f"-print-file-name={name}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip(f"{name} is not available to {gcc}")
    return path


def build(tmp: Path, flags: list[str]) -> Path:
    """Compile the shipped source with extra flags into a loadable extension; warnings fail."""
    gcc = need("gcc")
    out = tmp / f"_ringbuf{sysconfig.get_config_var('EXT_SUFFIX')}"
    cmd = [
        gcc,
        "-std=c11",
        "-O1",
        "-g",
        "-fPIC",
        "-shared",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{sysconfig.get_paths()['include']}",
        *flags,
        str(SOURCE),
        "-o",
        str(out),
        "-lm",
        "-lpthread",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"build failed: {' '.join(cmd)}\n{result.stderr}"
    return out


def run_tests(so_path: Path, env_extra: dict[str, str], tests: list[str]) -> str:
    """Run the ring buffer tests against the build; return the combined output.

    Sanitizer reports go to files (log_path): pytest captures file descriptor 2 while a test
    runs, and a sanitizer that halts the process would take a report written there with it.
    """
    reports = so_path.parent / "report"
    env = {**os.environ, **env_extra, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'daemon'}"}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"):
        if key in env:
            env[key] += f":log_path={reports}"
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(so_path), *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    written = "".join(p.read_text() for p in sorted(so_path.parent.glob("report*")))
    assert not written.strip(), f"sanitizer report:\n{written[:20000]}"
    output = result.stdout + result.stderr
    report = SANITIZER_REPORT.search(output)
    assert report is None, f"sanitizer report:\n{output[max(0, report.start() - 2000) :]}"
    assert result.returncode == 0, f"tests failed under the sanitized build:\n{output[-6000:]}"
    assert " passed" in output
    return output


def test_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    """The whole ring buffer suite (model checks, errors, two-thread stress) under ASan+UBSan:
    no out-of-bounds access, use-after-free, double free or undefined behaviour in our C."""
    so_path = build(
        tmp_path,
        [
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined",
        ],
    )
    run_tests(
        so_path,
        {
            "LD_PRELOAD": runtime_library(need("gcc"), "libasan.so"),
            # CPython does not free everything at exit; leaks are valgrind's job below.
            "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        },
        RINGBUF_TESTS,
    )


def test_thread_sanitizer_on_the_two_thread_tests(tmp_path: Path) -> None:
    """The two-thread stress tests under TSan: every access to shared ring state is ordered by
    our atomics (the uninstrumented interpreter's own accesses are invisible to it)."""
    so_path = build(tmp_path, ["-fsanitize=thread"])
    run_tests(
        so_path,
        {
            "LD_PRELOAD": runtime_library(need("gcc"), "libtsan.so"),
            "TSAN_OPTIONS": "halt_on_error=1:report_signal_unsafe=0",
        },
        ["tests/unit/test_ringbuf_stress.py"],
    )


EXERCISE = textwrap.dedent(
    """
    import sys, threading
    import importlib.machinery, importlib.util
    so_path = sys.argv[1]
    loader = importlib.machinery.ExtensionFileLoader("pilive.audio._ringbuf", so_path)
    spec = importlib.util.spec_from_file_location("pilive.audio._ringbuf", so_path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    RingBuffer = mod.RingBuffer

    for cap in (1, 2, 100, 4096, 70000):
        rb = RingBuffer(cap, fade_samples=8, prebuffer_bytes=0)
        data = bytes(range(256)) * 300
        for i in range(50):
            rb.write(memoryview(data)[: (i * 37) % (2 * cap + 2) & ~1])
            out = bytearray((i * 53) % (cap + 2) & ~1)
            rb.read_into(out)
            if i % 7 == 0:
                rb.clear()
            if i % 11 == 0:
                rb.end_stream()
            rb.gain = (i % 9) / 2.0
        rb.wait_readable(0, 0.0)
        rb.wait_writable(2, 0.001)
        for bad in (b"odd", 3, "x"):
            try:
                rb.write(bad)
            except (ValueError, TypeError, BufferError):
                pass
        try:
            rb.read_into(b"ro")
        except BufferError:
            pass
        repr(rb)
        del rb

    # The consumer reads after every wait, timed out or not, as the device callback reads every
    # period: a clear() frees the dropped audio's space only at the consumer's next read, and
    # wait_readable() does not wake for that, so a consumer that read only after a successful
    # wait would sleep beside a producer waiting for that space, for ever.
    rb = RingBuffer(1 << 16)
    done = threading.Event()
    def consume():
        out = bytearray(20000)
        while not done.is_set() or rb.available:
            rb.wait_readable(2, 0.05)
            rb.read_into(out)
    t = threading.Thread(target=consume)
    t.start()
    chunk = bytes(10000)
    for i in range(300):
        rest = memoryview(chunk)
        while rest:
            rest = rest[rb.write(rest) :]
            if rest:
                rb.wait_writable(len(rest), 1.0)
        if i % 50 == 0:
            rb.clear()
    done.set()
    t.join()
    print("exercise done")
    """
)


def test_valgrind_memcheck_finds_no_errors_in_our_code(tmp_path: Path) -> None:
    """A short exercise of every method (construction and destruction of many buffers, bad
    input, a consumer thread) under memcheck: no invalid access, uninitialised use or definite
    leak whose stack passes through the ring buffer. The interpreter's own reports are ignored."""
    valgrind = need("valgrind")
    so_path = build(tmp_path, [])
    log = tmp_path / "valgrind.log"
    result = subprocess.run(
        [
            valgrind,
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=definite",
            "--num-callers=30",
            f"--log-file={log}",
            sys.executable,
            "-c",
            EXERCISE,
            str(so_path),
        ],
        env={**os.environ, "PYTHONMALLOC": "malloc"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exercise done" in result.stdout
    text = log.read_text()
    # Reports are blocks of "==pid== " lines separated by blank "==pid==" lines.
    blocks = re.split(r"^==\d+==\s*$", text, flags=re.MULTILINE)
    ours = [
        b for b in blocks if "_ringbuf" in b and re.search(r"Invalid|uninitialised|definitely", b)
    ]
    assert not ours, "valgrind reports in the ring buffer:\n" + "\n".join(ours)
    assert "ERROR SUMMARY" in text
