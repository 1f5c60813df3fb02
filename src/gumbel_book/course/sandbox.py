"""The walls around a grading worker, from the outside in (Linux; each layer is used when the kernel allows it).

1. **A private network** (a user and a network namespace, ``unshare``): no route to anything.
2. **Resource limits** (``setrlimit``): address space, CPU seconds, file size, open files, no core dumps.
3. **Landlock** (Linux 5.13+, unprivileged): the worker may read only the Python installation and the system
   folders, write only in its own folder, open no TCP connection (ABI 4+), and signal no process outside itself
   (ABI 6+). The course folder, the grades and the package's own sources are outside what it may read.
4. **An audit hook** (``sys.addaudithook``, which cannot be removed): no new processes or threads, no signals, no
   sockets, no ``ctypes``, no object-graph walks through ``gc``, no new code objects, no changing the profile
   function, no opening the package's sources or the hidden paths, no writing outside the worker's folder.
5. **The answer blocker** of :mod:`gumbel_book.exercises.guard`, installed for good: the package's functions,
   ``torch.distributions`` sampling, ``multinomial`` (at the dispatcher), ``numpy.random`` and ``scipy.stats``
   samplers raise.

:func:`arm` installs 4 and 5 after the worker has imported what the notebook needs; :func:`report` says which
layers are on. Layers 1 to 3 hold even against code that gets past 4 and 5.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import sys
import sysconfig
import warnings
from collections.abc import Sequence

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ALL_ABI1 = (1 << 13) - 1
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
SYSTEM_FOLDERS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/dev", "/sys", "/proc/cpuinfo")

# Audit events refused once armed; any event starting with one of DENIED_PREFIXES is refused too.
DENIED_EVENTS = frozenset(
    {
        "sys.setprofile",
        "sys.settrace",
        "sys._current_frames",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "code.__new__",
        "marshal.load",
        "_thread.start_new_thread",
        "os.fork",
        "os.forkpty",
        "os.system",
        "os.kill",
        "os.killpg",
        "os.setuid",
        "os.chroot",
        "signal.pthread_kill",
        "subprocess.Popen",
        "pty.spawn",
        "resource.setrlimit",
        "resource.prlimit",
        "builtins.input",
    }
)
DENIED_PREFIXES = ("ctypes.", "socket.", "os.exec", "os.spawn", "os.posix_spawn", "_posixsubprocess", "mmap.")
WRITE_EVENTS = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "os.chflags",
        "os.lchflags",
        "os.mkfifo",
        "os.mknod",
        "os.setxattr",
        "os.removexattr",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "shutil.chown",
        "shutil.make_archive",
        "shutil.unpack_archive",
    }
)
LIST_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.listxattr", "os.getxattr"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


# --- 1. a private network ---------------------------------------------------------------------------------------


def private_network() -> str:
    """Move this (still single-threaded) process into new user and network namespaces; say what happened."""
    if sys.platform != "linux":
        return f"off (no namespaces on {sys.platform})"
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return f"off ({os.strerror(ctypes.get_errno())})"
    try:
        for path, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{path}", "w") as f:
                f.write(text)
    except OSError as err:  # the namespace holds (no network) even when the maps cannot be written
        return f"on (user ids unmapped: {err.strerror})"
    return "on"


# --- 2. resource limits -----------------------------------------------------------------------------------------


def set_limits(memory_mb: int, cpu_s: int, file_mb: int, open_files: int = 256) -> None:
    """Lower the soft and hard limits (never raise them); a write past ``file_mb`` fails instead of killing."""
    for name, value in (
        (resource.RLIMIT_AS, memory_mb * 2**20),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, file_mb * 2**20),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        soft, hard = resource.getrlimit(name)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(name, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# --- 3. Landlock ------------------------------------------------------------------------------------------------


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 without Landlock (or on another system than Linux)."""
    if sys.platform != "linux":
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def readable_folders(package_dir: str) -> list[str]:
    """What the worker may read after Landlock: the Python installation, its import paths and the system folders,
    but no import path that holds only this package (an editable install's ``src``)."""
    folders = set(SYSTEM_FOLDERS)
    folders |= {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    folders |= {p for p in sysconfig.get_paths().values() if p}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        names = {n for n in os.listdir(entry) if not n.endswith((".egg-info", ".dist-info", ".pth", "__pycache__"))}
        if os.path.realpath(os.path.join(entry, "gumbel_book")) == os.path.realpath(package_dir) and names <= {
            "gumbel_book"
        }:
            continue
        folders.add(entry)
    return sorted(f for f in folders if os.path.exists(f))


def landlock(read: Sequence[str], write: Sequence[str]) -> str:
    """Restrict this process (and its future children) to reading ``read`` and writing ``write``; say what holds."""
    abi = landlock_abi()
    if abi < 1:
        return "off (no Landlock in this kernel)"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fs = FS_ALL_ABI1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    fs |= FS_IOCTL_DEV if abi >= 5 else 0
    attr = _RulesetAttr(fs, (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0, 0)
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return f"off (ruleset: {os.strerror(ctypes.get_errno())})"
    try:
        for paths, access in ((read, READ_ONLY), (write, fs)):
            for path in paths:
                _add_rule(libc, ruleset, path, access)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0):
            return f"off (restrict: {os.strerror(ctypes.get_errno())})"
    finally:
        os.close(ruleset)
    parts = ["files"] + (["tcp"] if abi >= 4 else []) + (["signals"] if abi >= 6 else [])
    return f"on (ABI {abi}: {', '.join(parts)})"


def _add_rule(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0):
            raise OSError(ctypes.get_errno(), f"landlock rule for {path}")
    finally:
        os.close(fd)


# --- 3b. seccomp: no new threads or processes ------------------------------------------------------------------

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
# (audit arch, syscalls that start a thread or process or replace the program): x86_64 and aarch64
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, (56, 57, 58, 59, 322, 435)),  # clone, fork, vfork, execve, execveat, clone3
    "aarch64": (0xC00000B7, (220, 221, 281, 435)),  # clone, execve, execveat, clone3
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def no_new_tasks() -> str:
    """A seccomp filter: from now on this process can start no thread and no process and exec no program (those
    calls fail with EPERM). The worker runs single-threaded (torch with one thread), so nothing of its own needs
    them; a thread would escape the answer blocker, which watches one thread."""
    arch = SECCOMP_ARCHES.get(os.uname().machine) if sys.platform == "linux" else None
    if arch is None:
        return f"off (no filter for {os.uname().machine})"
    audit_arch, calls = arch
    deny = SECCOMP_RET_ERRNO | 1  # EPERM
    program = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ_K, 1, 0, audit_arch), (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]
    program += [(BPF_LD_W_ABS, 0, 0, 0), (BPF_JGE_K, len(calls) + 1, 0, 0x40000000)]  # x32 calls: denied
    program += [(BPF_JEQ_K, len(calls) - i, 0, nr) for i, nr in enumerate(calls)]
    program += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, deny)]
    filters = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
    prog = _SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog)
    ):
        return f"off ({os.strerror(ctypes.get_errno())})"
    return "on"


# --- 4. the audit hook ------------------------------------------------------------------------------------------


def _text_path(path: object) -> str | None:
    """An audit event's path argument as text: bytes decoded, anything else (a file descriptor, say) None."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path if isinstance(path, str) else None


def _under(path: object, folders: tuple[str, ...]) -> bool:
    path = _text_path(path)
    if path is None:
        return False
    real = os.path.realpath(path)
    return any(real == f.rstrip(os.sep) or real.startswith(f) for f in folders)


def _other_process(path: object, own: tuple[str, ...]) -> bool:
    """Whether ``path`` is under /proc but not this process's own entries (Landlock hides /proc as a whole)."""
    path = _text_path(path)
    if path is None:
        return False
    path = os.path.abspath(path)
    return (path == "/proc" or path.startswith("/proc/")) and not any(
        path == p or path.startswith(p + "/") for p in own
    )


def no_threads(message: str) -> None:
    """Replace the functions that start a thread by raisers (seccomp refuses the thread itself where it is on):
    the answer blocker watches one thread."""
    import _thread
    import threading

    from gumbel_book.exercises.guard import raiser

    for owner, name in ((_thread, "start_new_thread"), (_thread, "start_new"), (threading, "_start_new_thread")):
        if hasattr(owner, name):
            setattr(owner, name, raiser(name, f"{name} {message}"))


def _writes(event: str, args: tuple) -> bool:
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2]
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return True
        return isinstance(flags, int) and bool(flags & WRITE_FLAGS)
    return event in WRITE_EVENTS


def make_audit_hook(workdir: str, hidden: Sequence[str], blocked_code: Sequence[str], keep: tuple):
    """The hook :func:`arm` installs. ``keep`` holds objects that must live as long as the process (the
    multinomial override, the pending messages of the blocker) and is reachable only from the hook itself."""
    writable = (os.path.realpath(workdir) + os.sep, "/dev/null")
    secret = tuple(os.path.realpath(p).rstrip(os.sep) + os.sep for p in hidden)
    code_dirs = tuple(blocked_code)
    pending = keep[0]
    own = (f"/proc/{os.getpid()}", "/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo")

    def audit(event: str, args: tuple) -> None:
        if event in DENIED_EVENTS or event.startswith(DENIED_PREFIXES):
            if event in ("sys.setprofile", "sys.settrace") and pending:
                raise AssertionError(pending.pop())
            raise PermissionError(f"{event} is not allowed while grading")
        if event == "object.__setattr__" and len(args) >= 2:
            if args[1] == "__code__" or (args[0] is keep[2] and args[1] in ("__defaults__", "__kwdefaults__")):
                raise PermissionError(f"setting {args[1]} is not allowed while grading")
        if event == "marshal.loads" and args and isinstance(args[0], bytes | bytearray):
            if any(folder.encode() in args[0] for folder in code_dirs):  # code objects under the package's names
                raise PermissionError("loading code objects under the package's file names is not allowed")
        if event == "compile" and len(args) >= 2 and isinstance(args[1], str) and args[1].startswith(code_dirs):
            raise PermissionError("compiling code under the package's file names is not allowed while grading")
        if event == "exec" and args and getattr(args[0], "co_filename", "").startswith(code_dirs):
            raise PermissionError("running the package's code objects is not allowed while grading")
        if event == "import" and args and args[0] in ("_thread", "_posixsubprocess"):
            raise PermissionError(f"importing {args[0]} again is not allowed while grading")
        if event == "open" or event in LIST_EVENTS or event in WRITE_EVENTS:
            if not args:
                return
            if _other_process(args[0], own):
                raise PermissionError(f"{event} of another process's /proc entry is not allowed while grading")
            if _under(args[0], secret):
                raise PermissionError(f"{event} of a grader's or the package's file is not allowed while grading")
            if _writes(event, args) and isinstance(args[0], str | bytes) and not _under(args[0], writable):
                raise PermissionError(f"{event} outside the worker's folder is not allowed while grading")
            if event in ("os.rename", "os.link", "os.symlink", "shutil.move", "shutil.copyfile") and len(args) > 1:
                if not _under(args[1], writable):
                    raise PermissionError(f"{event} outside the worker's folder is not allowed while grading")

    audit.keep = keep  # the only reference to the multinomial override and the blocker: they live as long as the hook
    return audit


# --- 5. arming --------------------------------------------------------------------------------------------------


def poison_random_sources(message: str) -> int:
    """Replace every ``numpy.random`` sampler, generator type and generator found in any loaded module's namespace
    by a raiser (once, for good); return how many were replaced."""
    from gumbel_book.exercises import guard

    guard.numpy_random_modules()
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reading some modules' namespaces warns about deprecated names
        for module in list(sys.modules.values()):
            count += _poison_module(module, message, guard)
    return count


def _poison_module(module, message: str, guard) -> int:
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return 0
    count = 0
    for name, value in list(namespace.items()):
        if name.startswith("__") or not guard.is_numpy_random(value):
            continue
        stand_in = guard.raiser_type if isinstance(value, type) else guard.raiser
        namespace[name] = stand_in(name, f"{getattr(module, '__name__', '?')}.{name} {message}")
        count += 1
    return count


def _stub(name: str):
    namespace: dict = {}
    source = f"def {name}(*args, **kwargs):\n    print('{name}: checked by the grader')\n"
    exec(compile(source, "<check stub>", "exec"), namespace)  # noqa: S102 - a fixed one-liner
    return namespace[name]


def quiet_checks() -> int:
    """Replace the exercise checks a notebook calls by stubs that print that the grader checks: the worker has no
    use for them (the grader runs the real ones), and they would only be refused the package's code they run."""
    import gumbel_book.exercises as exercises

    count = 0
    for module in [exercises, *(m for n, m in sys.modules.items() if n.startswith("gumbel_book.exercises."))]:
        for name in [n for n, v in vars(module).items() if n.startswith("check_") and callable(v)]:
            setattr(module, name, _stub(name))
            count += 1
    return count


def arm(workdir: str, hidden: Sequence[str], origins) -> dict:
    """Install the answer blocker and the audit hook for good (layers 4 and 5); return what was done.

    ``origins`` (:func:`gumbel_book.exercises.guard.answer_origins`) is computed before Landlock, which hides the
    package's sources."""
    import gumbel_book
    from gumbel_book.exercises.guard import NOT_ALLOWED, block_multinomial, make_answer_blocker

    pending: list[str] = []
    replaced = poison_random_sources(NOT_ALLOWED)
    quiet_checks()
    no_threads("is not allowed while grading")
    library = block_multinomial(f"torch.multinomial {NOT_ALLOWED}")
    blocker = make_answer_blocker(origins, pending)
    package_dir = os.path.dirname(os.path.abspath(gumbel_book.__file__)) + os.sep
    hook = make_audit_hook(workdir, [*hidden, package_dir], origins.folders, (pending, library, blocker))
    sys.setprofile(blocker)
    sys.addaudithook(hook)
    return {"blocker": "on", "numpy_random_replaced": replaced, "audit_hook": "on"}
