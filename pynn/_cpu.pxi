# ISA dispatch, threads and build facts (csrc/cpu.c).

cdef extern from "pynn.h" nogil:
    enum:
        PN_ISA_COUNT
    int pn_active_isa
    int pn_isa_built(int isa)
    int pn_isa_supported(int isa)
    int pn_best_isa()
    int pn_set_isa(int isa)
    const char *pn_isa_name(int isa)
    void pn_set_num_threads(int n)
    int pn_get_num_threads()
    int pn_openmp_enabled()
    int pn_openmp_spec()
    const char *pn_compiler()
    const char *pn_openmp_version()


ISA_NAMES = tuple(pn_isa_name(i).decode() for i in range(PN_ISA_COUNT))


def isa_built():
    """Names of the ISA paths compiled into this build, lowest first."""
    return [ISA_NAMES[i] for i in range(PN_ISA_COUNT) if pn_isa_built(i)]


def isa_supported():
    """Names of the paths this CPU and OS can run, lowest first."""
    return [ISA_NAMES[i] for i in range(PN_ISA_COUNT) if pn_isa_supported(i)]


def best_isa():
    return ISA_NAMES[pn_best_isa()]


def get_isa():
    """The ISA path the kernels use now."""
    return ISA_NAMES[pn_active_isa]


def set_isa(name):
    """Select the kernels' ISA path by name ('generic', 'avx2', 'avx512')."""
    if not isinstance(name, str) or name not in ISA_NAMES:
        raise ValueError(f"isa must be one of {', '.join(ISA_NAMES)}; got {name!r}")
    cdef int isa = ISA_NAMES.index(name)
    if pn_set_isa(isa) != 0:
        raise ValueError(f"isa {name!r} is not supported here (built: {', '.join(isa_built())}; "
                         f"this CPU runs: {', '.join(isa_supported())})")


def set_num_threads(n):
    """Threads pynn's kernels may use (OpenMP). Small inputs still run on one."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pn_set_num_threads(<int>min(int(n), 1 << 16))


def get_num_threads():
    """Threads pynn's kernels use now: the smaller of set_num_threads and OpenMP's limit
    (OMP_NUM_THREADS, threadpoolctl)."""
    return pn_get_num_threads()


def core_info():
    return {
        "compiler": pn_compiler().decode(),
        "openmp": bool(pn_openmp_enabled()),
        "openmp_version": pn_openmp_version().decode() or None,
        "openmp_spec": pn_openmp_spec() or None,
        "isa_built": isa_built(),
        "isa_supported": isa_supported(),
        "isa_selected": get_isa(),
        "num_threads": pn_get_num_threads(),
    }
