/* hypemu._budget: an exact instruction budget for one Unicorn instance, counted per translated
 * block in native code (the Python side is hypemu/engine_budget.py, which explains the method).
 *
 * Why C: Unicorn's own budget, emu_start(count=N), calls a code hook on every instruction; a
 * Python block hook costs a Python call per block. A C block hook that is the instance's only
 * block hook is called directly from the translated code (Unicorn 2.1 "inlines" a sole hook), so
 * counting costs an add and a compare per block.
 *
 * Nothing is linked at build time: the Unicorn functions are handed over as addresses, taken by
 * ctypes from the libunicorn that the unicorn binding loaded (the one the instance lives in).
 *
 * Counting follows emu_start(count=N) exactly: an instruction counts when it starts; the run stops
 * when the (N+1)th instruction would start, which is counted too (so a run that ran out reports
 * N+1). ARM state only: a block's size / 4 is its instruction count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HOOK_CODE 4   /* UC_HOOK_CODE */
#define HOOK_BLOCK 8  /* UC_HOOK_BLOCK */

typedef size_t uc_hook_h;
typedef int (*hook_add_fn)(void *uc, uc_hook_h *hh, int type, void *callback, void *user_data,
                           uint64_t begin, uint64_t end, ...);
typedef int (*hook_del_fn)(void *uc, uc_hook_h hh);
typedef int (*emu_stop_fn)(void *uc);
typedef int (*reg_read_fn)(void *uc, int regid, void *value);
typedef int (*ctl_fn)(void *uc, int control, ...);

typedef struct {
    PyObject_HEAD
    void *uc;
    hook_add_fn hook_add;
    hook_del_fn hook_del;
    emu_stop_fn emu_stop;
    reg_read_fn reg_read;
    ctl_fn ctl;
    int pc_reg, cpsr_reg;          /* UC_ARM_REG_PC, UC_ARM_REG_CPSR */
    int remove_cache;              /* the uc_ctl code of UC_CTL_TB_REMOVE_CACHE, write */
    uint64_t page;                 /* Unicorn's page size */
    uint64_t counter, limit;       /* instructions counted in this run; the run's budget */
    uint64_t blk_begin, blk_end;   /* the last block counted whole (blk_end 0: none open) */
    uint64_t pending;              /* a block that would pass the limit (valid if has_pending) */
    int has_pending;
    uint64_t fin_begin, fin_end;   /* the page counted per instruction (valid if finishing) */
    int finishing;
    int off;                       /* disabled: the engine counts with count= now */
    uc_hook_h block_hook, code_hook;
    uint64_t odd_blocks;           /* blocks whose size is no multiple of 4: Thumb code ran */
} Budget;

/* The block hook: before a block's first instruction (the exit check follows it, so a stop here
 * keeps the block from running). */
static void on_block(void *uc, uint64_t address, uint32_t size, void *data)
{
    Budget *b = (Budget *)data;
    uint64_t n = size >> 2;
    if (b->off)
        return;
    if (size & 3) {                /* Thumb code: not countable here; the run is refused */
        b->odd_blocks++;
        b->blk_end = 0;
        b->emu_stop(uc);
        return;
    }
    if (b->finishing && address >= b->fin_begin && address < b->fin_end) {
        b->blk_end = 0;            /* the code hook counts this page's instructions */
        return;
    }
    if (b->counter + n <= b->limit) {
        b->counter += n;
        b->blk_begin = address;
        b->blk_end = address + size;
        return;
    }
    b->blk_end = 0;
    if (b->counter == b->limit)
        b->counter++;              /* the first instruction would pass: count= stops just here */
    else {
        b->pending = address;      /* the limit falls inside: finish this block per instruction */
        b->has_pending = 1;
    }
    b->emu_stop(uc);
}

/* The code hook, bounded to the page being finished; a translation of an earlier finishing that
 * Unicorn still holds may call it outside it: ignored then. */
static void on_insn(void *uc, uint64_t address, uint32_t size, void *data)
{
    Budget *b = (Budget *)data;
    (void)size;
    if (!b->finishing || address < b->fin_begin || address >= b->fin_end)
        return;
    if (++b->counter > b->limit)
        b->emu_stop(uc);
}

static int read_pc(Budget *b, uint64_t *pc)
{
    uint32_t value = 0;
    if (b->reg_read(b->uc, b->pc_reg, &value)) {
        PyErr_SetString(PyExc_RuntimeError, "uc_reg_read(PC) failed");
        return -1;
    }
    *pc = value;
    return 0;
}

static int remove_cache(Budget *b, uint64_t begin, uint64_t end)
{
    if (b->ctl(b->uc, b->remove_cache, begin, end)) {
        PyErr_SetString(PyExc_RuntimeError, "uc_ctl(TB_REMOVE_CACHE) failed");
        return -1;
    }
    return 0;
}

static int end_finishing(Budget *b)
{
    if (!b->finishing)
        return 0;
    b->finishing = 0;
    if (b->hook_del(b->uc, b->code_hook)) {
        PyErr_SetString(PyExc_RuntimeError, "uc_hook_del(code) failed");
        return -1;
    }
    b->code_hook = 0;
    /* hook_del drops the translations made with the hook; this also covers one made elsewhere */
    return remove_cache(b, b->fin_begin, b->fin_end);
}

static int Budget_init(Budget *b, PyObject *args, PyObject *kw)
{
    unsigned long long uc, add, del, stop, read, ctl, page;
    int pc_reg, cpsr_reg, remove;
    if (!PyArg_ParseTuple(args, "KKKKKKiiiK", &uc, &add, &del, &stop, &read, &ctl, &pc_reg,
                          &cpsr_reg, &remove, &page))
        return -1;
    if (b->uc) {
        PyErr_SetString(PyExc_RuntimeError, "a Budget is installed once");
        return -1;
    }
    b->uc = (void *)(uintptr_t)uc;
    b->hook_add = (hook_add_fn)(uintptr_t)add;
    b->hook_del = (hook_del_fn)(uintptr_t)del;
    b->emu_stop = (emu_stop_fn)(uintptr_t)stop;
    b->reg_read = (reg_read_fn)(uintptr_t)read;
    b->ctl = (ctl_fn)(uintptr_t)ctl;
    b->pc_reg = pc_reg;
    b->cpsr_reg = cpsr_reg;
    b->remove_cache = remove;
    b->page = page;
    b->limit = UINT64_MAX;
    /* begin 1 > end 0: every address */
    if (b->hook_add(b->uc, &b->block_hook, HOOK_BLOCK, (void *)on_block, b, 1, 0)) {
        b->uc = NULL;
        PyErr_SetString(PyExc_RuntimeError, "uc_hook_add(block) failed");
        return -1;
    }
    return 0;
}

static PyObject *Budget_arm(Budget *b, PyObject *arg)
{
    unsigned long long limit = PyLong_AsUnsignedLongLong(arg);
    if (limit == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (end_finishing(b))
        return NULL;
    b->counter = 0;
    b->limit = limit;
    b->blk_end = 0;
    b->has_pending = 0;
    Py_RETURN_NONE;
}

static PyObject *Budget_finish(Budget *b, PyObject *unused)
{
    uint64_t begin;
    if (!b->has_pending) {
        PyErr_SetString(PyExc_RuntimeError, "no block to finish");
        return NULL;
    }
    if (end_finishing(b))
        return NULL;
    b->has_pending = 0;
    begin = b->pending & ~(b->page - 1);
    if (remove_cache(b, begin, begin + b->page))
        return NULL;
    if (b->hook_add(b->uc, &b->code_hook, HOOK_CODE, (void *)on_insn, b, begin,
                    begin + b->page - 1)) {
        PyErr_SetString(PyExc_RuntimeError, "uc_hook_add(code) failed");
        return NULL;
    }
    b->fin_begin = begin;
    b->fin_end = begin + b->page;
    b->finishing = 1;
    return PyLong_FromUnsignedLongLong(b->pending);
}

static PyObject *Budget_end(Budget *b, PyObject *unused)
{
    if (end_finishing(b))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Budget_executed(Budget *b, PyObject *unused)
{
    uint64_t pc;
    if (read_pc(b, &pc))
        return NULL;
    if (b->blk_end && pc >= b->blk_begin && pc < b->blk_end)   /* stopped inside (a fault) */
        return PyLong_FromUnsignedLongLong(b->counter - ((b->blk_end - pc) >> 2) + 1);
    return PyLong_FromUnsignedLongLong(b->counter);
}

static PyObject *Budget_trapped(Budget *b, PyObject *unused)
{
    uint64_t pc;
    uint32_t cpsr = 0;
    if (read_pc(b, &pc))
        return NULL;
    if (b->blk_end && pc >= b->blk_begin && pc < b->blk_end)   /* the rest will not run */
        b->counter -= (b->blk_end - pc - 4) >> 2;
    b->blk_end = 0;
    if (b->reg_read(b->uc, b->cpsr_reg, &cpsr)) {
        PyErr_SetString(PyExc_RuntimeError, "uc_reg_read(CPSR) failed");
        return NULL;
    }
    return Py_BuildValue("(KI)", (unsigned long long)pc, (unsigned int)cpsr);
}

static PyObject *Budget_reset(Budget *b, PyObject *unused)
{
    if (end_finishing(b))
        return NULL;
    b->counter = 0;
    b->limit = UINT64_MAX;
    b->blk_begin = b->blk_end = 0;
    b->has_pending = 0;
    b->odd_blocks = 0;
    Py_RETURN_NONE;
}

static PyObject *Budget_disable(Budget *b, PyObject *unused)
{
    if (end_finishing(b))
        return NULL;
    b->off = 1;
    b->blk_end = 0;
    b->has_pending = 0;
    Py_RETURN_NONE;
}

static PyObject *Budget_pending(Budget *b, void *closure)
{
    if (!b->has_pending)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(b->pending);
}

static PyObject *Budget_odd_blocks(Budget *b, void *closure)
{
    return PyLong_FromUnsignedLongLong(b->odd_blocks);
}

static PyObject *Budget_counter(Budget *b, void *closure)
{
    return PyLong_FromUnsignedLongLong(b->counter);
}

static PyMethodDef Budget_methods[] = {
    {"arm", (PyCFunction)Budget_arm, METH_O, "arm(limit): a new run of at most limit instructions"},
    {"finish", (PyCFunction)Budget_finish, METH_NOARGS,
     "count the pending block's page per instruction; returns the PC to resume at"},
    {"end", (PyCFunction)Budget_end, METH_NOARGS, "stop counting per instruction"},
    {"executed", (PyCFunction)Budget_executed, METH_NOARGS,
     "instructions of the run, as emu_start(count=) counts them"},
    {"trapped", (PyCFunction)Budget_trapped, METH_NOARGS,
     "an invalid-instruction hook at PC: the rest of its block will not run; -> (PC, CPSR)"},
    {"reset", (PyCFunction)Budget_reset, METH_NOARGS, "forget every run (the block hook stays)"},
    {"disable", (PyCFunction)Budget_disable, METH_NOARGS, "count no more (the hook stays, idle)"},
    {NULL}
};

static PyGetSetDef Budget_getset[] = {
    {"pending", (getter)Budget_pending, NULL, "the block a run stopped before, or None", NULL},
    {"odd_blocks", (getter)Budget_odd_blocks, NULL, "blocks of Thumb code seen", NULL},
    {"counter", (getter)Budget_counter, NULL, "the raw counter", NULL},
    {NULL}
};

static PyTypeObject BudgetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hypemu._budget.Budget",
    .tp_basicsize = sizeof(Budget),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Budget(uc, uc_hook_add, uc_hook_del, uc_emu_stop, uc_reg_read, uc_ctl, pc_reg, "
              "cpsr_reg, remove_cache_code, page): the block hook, installed on the uc_engine at uc",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Budget_init,
    .tp_methods = Budget_methods,
    .tp_getset = Budget_getset,
};

static struct PyModuleDef budget_module = {
    PyModuleDef_HEAD_INIT, "hypemu._budget",
    "An exact instruction budget counted per block in native code (see engine_budget).", -1, NULL
};

PyMODINIT_FUNC PyInit__budget(void)
{
    PyObject *m;
    if (PyType_Ready(&BudgetType) < 0)
        return NULL;
    m = PyModule_Create(&budget_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&BudgetType);
    if (PyModule_AddObject(m, "Budget", (PyObject *)&BudgetType) < 0) {
        Py_DECREF(&BudgetType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
