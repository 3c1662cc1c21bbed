# tools/gdb/coil.py: gdb commands that list the tasks of a coil program and
# print their stacks, in a live process or a core file.
#
#   (gdb) source tools/gdb/coil.py
#   (gdb) coil tasks            one line per live task of every loop
#   (gdb) coil bt ID            the stack of task ID
#   (gdb) coil bt all           the stacks of every task
#
# The script reads memory only, so it works on a stopped process and on a
# core file alike, and needs no debug information: libcoil describes its own
# structures in coil__debug_table (runtime/debug/debug.c), a symbol of its
# symbol table (a stripped library or program has none; keep .symtab, or
# install the debug symbols). The table holds the offsets of every field
# read here and the registry of the process's live loops; each loop holds
# its list of live tasks.
#
# Stacks. A task suspended in an await is walked from the context it saved
# when it switched out, following the frame pointer chain inside its stack
# (and on, through the coroutines it was running, to its own), as
# coil_task_print_stack does in the process. A task running when the
# process stopped is on a thread's stack: gdb's own backtrace of that thread
# shows it. Frames are named from debug information where there is some,
# else from the symbol table.
#
# What is read may be half-updated where the process stopped in the middle
# of changing it (a crash inside the runtime): every read is guarded, a bad
# pointer ends a walk with a note, and lists and chains are bounded.
#
# Shown for each task: id, name, state, the worker it last ran on, what it
# waits for (and its deadline, on its loop's clock: a core file has no
# "now"), and how much of its stack holds anything but zeros (the pages
# used since the stack's memory was fresh). A task's age is not shown: the
# process's clock cannot be read from a core.
#
# Core files: the kernel's core dumps hold the coroutine stacks. gdb's own
# `gcore` reads each mapping whole and drops a stack chunk whose read meets
# a guard installed with MADV_GUARD_INSTALL (Linux 6.13 and later); to take
# a core of a live process with gcore, start it with COIL_STACK_GUARD=mprotect
# (runtime/stack.c), whose guards are mappings of their own.

import re
import struct

import gdb

MAGIC = 0x314742444C494F43  # "COILDBG1"
VERSION = 1

# The order of DEBUG_FIELDS in runtime/debug/debug.c.
FIELDS = """loop_tasks loop_rt loop_index loop_tid loop_current loop_closed
list_next body_all body_task body_rstate body_started body_resume
body_waiting body_worker body_coro body_created task_id task_name task_body
future_is_task coro_sp coro_parent coro_stack coro_name stack_lo stack_size
waiter_what waiter_source waiter_timer_when waiter_timer_loop ts_queued
ts_running ts_waiting ts_notified saved_fp saved_pc saved_words
loop_own""".split()

MAX_TASKS = 1000000
MAX_FRAMES = 256
MAX_CHAIN = 64


class Unreadable(Exception):
    pass


class Mem:
    """Reads of the inferior's memory (live or core), as Python values."""

    def __init__(self):
        self.inf = gdb.selected_inferior()

    def raw(self, addr, n):
        if addr <= 0 or addr + n > 1 << 64:
            raise Unreadable("bad address 0x%x" % max(addr, 0))
        try:
            return bytes(self.inf.read_memory(addr, n))
        except (gdb.MemoryError, gdb.error, ValueError, OverflowError) as e:
            raise Unreadable("cannot read 0x%x: %s" % (addr, e))

    def u64(self, addr):
        return struct.unpack("<Q", self.raw(addr, 8))[0]

    def i64(self, addr):
        return struct.unpack("<q", self.raw(addr, 8))[0]

    def u32(self, addr):
        return struct.unpack("<I", self.raw(addr, 4))[0]

    def i32(self, addr):
        return struct.unpack("<i", self.raw(addr, 4))[0]

    def u8(self, addr):
        return self.raw(addr, 1)[0]

    def cstr(self, addr, limit=256):
        if not addr:
            return None
        out = b""
        while len(out) < limit:
            chunk = self.raw(addr + len(out), 16)
            i = chunk.find(b"\0")
            if i >= 0:
                return (out + chunk[:i]).decode("utf-8", "replace")
            out += chunk
        return out.decode("utf-8", "replace") + "..."


def table_address():
    try:
        v = gdb.parse_and_eval("&coil__debug_table")
    except gdb.error:
        raise gdb.GdbError(
            "coil: no coil__debug_table here: is libcoil loaded (run the "
            "program, or give the core file its program), and is its "
            "symbol table there (not stripped)?")
    return int(v.cast(gdb.lookup_type("unsigned long")))


class Layout:
    """coil__debug_table: the offsets and the registry of loops."""

    def __init__(self, mem):
        base = table_address()
        magic, version, nfields, loops, nloops = struct.unpack(
            "<5Q", mem.raw(base, 40))
        if magic != MAGIC:
            raise gdb.GdbError("coil: coil__debug_table has a bad magic number")
        if version != VERSION or nfields < len(FIELDS):
            raise gdb.GdbError(
                "coil: this script reads table version %d, the program has "
                "version %d: use the script of the same coil" % (VERSION, version))
        words = struct.unpack("<%dQ" % len(FIELDS), mem.raw(base + 40, 8 * len(FIELDS)))
        for name, value in zip(FIELDS, words):
            setattr(self, name, value)
        self.loops = []
        if loops and 0 < nloops < 100000:
            self.loops = list(struct.unpack("<%dQ" % nloops, mem.raw(loops, 8 * nloops)))


class Task:
    pass


def read_task(mem, lay, body, loops_by_addr):
    t = Task()
    t.body = body
    t.addr = mem.u64(body + lay.body_task)
    t.id = mem.u64(t.addr + lay.task_id)
    try:
        t.name = mem.cstr(mem.u64(t.addr + lay.task_name), 64)
    except Unreadable:
        t.name = None
    if not t.name:
        t.name = "Task-%d" % t.id
    t.rstate = mem.u8(body + lay.body_rstate)
    t.started = mem.u8(body + lay.body_started)
    t.waiting = mem.u64(body + lay.body_waiting)
    t.resume = mem.u64(body + lay.body_resume)
    t.coro = body + lay.body_coro
    t.created = mem.i64(body + lay.body_created)
    worker = mem.u64(body + lay.body_worker)
    t.worker_loop = loops_by_addr.get(worker)
    t.worker = t.worker_loop.index if t.worker_loop and t.worker_loop.rt else -1
    t.running_on = None
    for lp in loops_by_addr.values():
        if lp.current == t.addr:
            t.running_on = lp
    t.awaits = None
    t.deadline = None
    if t.waiting:
        w = t.waiting
        try:
            t.awaits = mem.cstr(mem.u64(w + lay.waiter_what), 32)
            if t.awaits == "future":
                src = mem.u64(w + lay.waiter_source)
                if src and mem.u8(src + lay.future_is_task):
                    t.awaits = "task %d" % mem.u64(src + lay.task_id)
            if mem.u64(w + lay.waiter_timer_loop):
                t.deadline = mem.i64(w + lay.waiter_timer_when)
        except Unreadable:
            t.awaits = "(unreadable waiter)"
    if t.running_on:
        t.state = "running"
    elif t.waiting:
        t.state = {lay.ts_waiting: "waiting", lay.ts_running: "running"}.get(
            t.rstate, "ready")
    elif not t.started:
        t.state = "created"
    elif t.rstate == lay.ts_running:
        t.state = "running"
    else:
        t.state = "ready"
    try:
        stack = mem.u64(t.coro + lay.coro_stack)
        t.stack_lo = mem.u64(stack + lay.stack_lo) if stack else 0
        t.stack_size = mem.u64(stack + lay.stack_size) if stack else 0
    except Unreadable:
        t.stack_lo = t.stack_size = 0
    return t


class Loop:
    pass


def read_loops(mem, lay):
    loops = []
    for addr in lay.loops:
        lp = Loop()
        lp.addr = addr
        try:
            lp.rt = mem.u64(addr + lay.loop_rt)
            lp.index = mem.u32(addr + lay.loop_index)
            lp.tid = mem.i32(addr + lay.loop_tid)
            lp.current = mem.u64(addr + lay.loop_current)
            lp.closed = mem.u8(addr + lay.loop_closed)
        except Unreadable as e:
            gdb.write("coil: loop 0x%x: %s\n" % (addr, e))
            continue
        loops.append(lp)
    loops.sort(key=lambda lp: (lp.rt, lp.index, lp.addr))
    return loops


def read_tasks(mem, lay, lp, loops_by_addr):
    """The live tasks on loop lp's lists (its tasks, wherever they run): the
    shared list and the worker's own. A body whose task no longer points to
    it ended on another worker and waits there to be unlinked: not listed."""
    tasks = []
    for off in (lay.loop_tasks, lay.loop_own):
        head = lp.addr + off
        try:
            p = mem.u64(head + lay.list_next)
            while p != head and len(tasks) < MAX_TASKS:
                body = p - lay.body_all
                task = mem.u64(body + lay.body_task)
                if mem.u64(task + lay.task_body) == body:
                    tasks.append(read_task(mem, lay, body, loops_by_addr))
                p = mem.u64(p + lay.list_next)
        except Unreadable as e:
            gdb.write("coil: the task list of loop 0x%x ends early: %s\n" % (lp.addr, e))
    return tasks


def all_tasks():
    mem = Mem()
    lay = Layout(mem)
    loops = read_loops(mem, lay)
    by_addr = {lp.addr: lp for lp in loops}
    return mem, lay, [(lp, read_tasks(mem, lay, lp, by_addr)) for lp in loops]


def stack_touched(mem, t):
    """Bytes from the top of the stack down to its lowest page holding
    anything but zeros (what has been used since the pages were fresh)."""
    if not t.stack_lo or not t.stack_size:
        return None
    page = 4096
    for off in range(0, t.stack_size, page):
        try:
            data = mem.raw(t.stack_lo + off, page)
        except Unreadable:
            continue  # not in the core: never touched
        if data.count(0) != len(data):
            return t.stack_size - off
    return 0


def describe_loop(lp):
    where = "loop 0x%x" % lp.addr
    if lp.rt:
        where = "runtime 0x%x worker %d" % (lp.rt, lp.index)
    return "%s (LWP %d)%s" % (where, lp.tid, ", closed" if lp.closed else "")


def task_line(mem, t):
    s = "task %d '%s': %s" % (t.id, t.name, t.state)
    if t.worker >= 0:
        s += " on worker %d" % t.worker
    if t.awaits:
        s += " for %s" % t.awaits
    if t.deadline is not None:
        s += " (deadline %.3f s on its loop's clock)" % (t.deadline / 1e9)
    used = stack_touched(mem, t)
    if used is not None:
        s += "; stack %d of %d KiB touched" % (used // 1024, t.stack_size // 1024)
    return s


# --- symbols and stacks ---------------------------------------------------

_info_symbol = re.compile(r"^(\S+)(?: \+ (\d+))? in section")


def describe_pc(pc, ret=True):
    """'name+0xoff (module) at file:line' for a code address."""
    look = pc - 1 if ret and pc else pc
    name, start = None, None
    try:
        block = gdb.block_for_pc(look)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            name, start = block.function.print_name, block.start
    except RuntimeError:
        pass
    if name is None:
        # Plain names: gdb would read coil__x as an Ada name, "coil.x".
        demangle = gdb.parameter("print demangle")
        try:
            gdb.execute("set print demangle off", to_string=True)
            out = gdb.execute("info symbol 0x%x" % look, to_string=True)
            m = _info_symbol.match(out)
            if m:
                name = m.group(1)
                start = look - int(m.group(2) or 0)
        except gdb.error:
            pass
        finally:
            gdb.execute("set print demangle %s" % ("on" if demangle else "off"),
                        to_string=True)
    text = "%s+0x%x" % (name, pc - start) if name else "??"
    try:
        lib = gdb.current_progspace().solib_name(pc)
    except (AttributeError, RuntimeError):
        lib = None
    if lib:
        text += " (%s)" % lib.rsplit("/", 1)[-1]
    sal = gdb.find_pc_line(look)
    if sal.symtab is not None and sal.line:
        text += " at %s:%d" % (sal.symtab.filename, sal.line)
    return text, name


def walk_chain(mem, lo, hi, fp, pc, out):
    """Follows the frame pointer chain inside [lo, hi); stops at a
    coroutine's entry. Returns False if it met an unreadable word."""
    if pc:
        out.append(pc)
    while len(out) < MAX_FRAMES:
        if fp < lo or fp > hi - 16 or fp & 7:
            return True
        try:
            nxt, ret = mem.u64(fp), mem.u64(fp + 8)
        except Unreadable:
            return False
        if not ret:
            return True
        out.append(ret)
        if nxt <= fp:
            return True
        fp = nxt
    return True


def saved_frames(mem, lay, t):
    """The return addresses of a suspended task, innermost first."""
    out = []
    c = t.resume
    for _ in range(MAX_CHAIN):
        if not c:
            break
        stack = mem.u64(c + lay.coro_stack)
        if not stack:
            break
        lo = mem.u64(stack + lay.stack_lo)
        hi = lo + mem.u64(stack + lay.stack_size)
        sp = mem.u64(c + lay.coro_sp)
        if lo <= sp <= hi - 8 * lay.saved_words and not sp & 7:
            fp = mem.u64(sp + 8 * lay.saved_fp)
            pc = mem.u64(sp + 8 * lay.saved_pc)
            walk_chain(mem, lo, hi, fp, pc, out)
        if c == t.coro:
            break
        c = mem.u64(c + lay.coro_parent)
    return out


def print_saved(mem, lay, t):
    try:
        frames = saved_frames(mem, lay, t)
    except Unreadable as e:
        gdb.write("    (stack not readable: %s)\n" % e)
        return
    n = 0
    for pc in frames:
        text, name = describe_pc(pc)
        if name == "coil__ctx_entry":
            continue
        gdb.write("    #%-2d 0x%016x in %s\n" % (n, pc, text))
        n += 1
    if not n:
        gdb.write("    (no frames)\n")


def print_thread(lp):
    """A running task: gdb's backtrace of the thread running its loop."""
    target = None
    for th in gdb.selected_inferior().threads():
        if th.ptid[1] == lp.tid:
            target = th
    if target is None:
        gdb.write("    (running on LWP %d, which gdb does not show)\n" % lp.tid)
        return
    before = gdb.selected_thread()
    try:
        target.switch()
        f = gdb.newest_frame()
        n = 0
        while f is not None and n < MAX_FRAMES:
            pc = f.pc()
            text, name = describe_pc(pc, ret=n > 0 and f.type() == gdb.NORMAL_FRAME)
            gdb.write("    #%-2d 0x%016x in %s\n" % (n, pc, text))
            if name == "coro_main":
                break  # the task's entry: below is the loop's stack
            n += 1
            try:
                f = f.older()
            except gdb.error:
                break
    finally:
        if before is not None:
            before.switch()


def print_stack(mem, lay, t):
    if t.state == "created":
        gdb.write("    (not started)\n")
    elif t.running_on is not None:
        print_thread(t.running_on)
    elif t.waiting or t.state == "ready":
        print_saved(mem, lay, t)
    else:
        gdb.write("    (running: its stack is on a worker thread's; see `info threads`)\n")


# --- commands ---------------------------------------------------------------


class CoilCommand(gdb.Command):
    """Commands for coil programs: coil tasks, coil bt."""

    def __init__(self):
        super().__init__("coil", gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, True)


class CoilTasks(gdb.Command):
    """List every live task of every coil loop: coil tasks"""

    def __init__(self):
        super().__init__("coil tasks", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        mem, lay, per_loop = all_tasks()
        total = sum(len(ts) for _, ts in per_loop)
        gdb.write("coil: %d task(s) on %d loop(s)\n" % (total, len(per_loop)))
        for lp, tasks in per_loop:
            gdb.write("  %s: %d task(s)\n" % (describe_loop(lp), len(tasks)))
            for t in tasks:
                gdb.write("    %s\n" % task_line(mem, t))


class CoilBt(gdb.Command):
    """Print the stack of a coil task: coil bt ID | coil bt all"""

    def __init__(self):
        super().__init__("coil bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if not arg:
            raise gdb.GdbError("usage: coil bt ID | coil bt all")
        want = None
        if arg != "all":
            try:
                want = int(arg, 0)
            except ValueError:
                raise gdb.GdbError("coil bt: not a task id: %s" % arg)
        mem, lay, per_loop = all_tasks()
        found = False
        for _, tasks in per_loop:
            for t in tasks:
                if want is not None and t.id != want:
                    continue
                found = True
                gdb.write("%s\n" % task_line(mem, t))
                print_stack(mem, lay, t)
        if not found:
            raise gdb.GdbError("coil bt: no live task %s" % arg)


CoilCommand()
CoilTasks()
CoilBt()
